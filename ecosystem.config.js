// PM2 process file. ESM named export: PM2 require()s this file, and Node 24 returns the module
// namespace, whose `apps` is what PM2 reads.
//
// Start:  npm start                (pm2-runtime, foreground: containers, systemd)
//         npx pm2 start ecosystem.config.js   (daemon; logs in $PM2_HOME/logs)
// Reload: npx pm2 reload astro-multi-tenant  (one worker at a time, no request dropped)
// Scale:  npx pm2 scale astro-multi-tenant 4
// Without Redis, sessions live in one process's memory, so the embedded default is one worker;
// with REDIS_URL (or Sentinel / Cluster nodes) it is every core. A worker refuses to start in a
// multi-instance cluster without Redis (session/embedded-mode.ts). REDIS_URL_FILE counts as Redis,
// as in config.ts: a URL kept in a Docker or Kubernetes secret file must not mean one worker.
const hasRedis = Boolean(process.env.REDIS_URL || process.env.REDIS_URL_FILE || process.env.REDIS_SENTINELS || process.env.REDIS_CLUSTER_NODES);
const requested = process.env.INSTANCES || (hasRedis ? 'max' : '1');
const instances = requested === 'max' ? 'max' : Number(requested);

const ms = (name, fallback) => (process.env[name] && /^\d+$/.test(process.env[name]) ? Number(process.env[name]) : fallback);
// The server's own drain (ops/drain.ts) ends within SHUTDOWN_DELAY_MS + DRAIN_TIMEOUT_MS; PM2 must
// wait longer than that before its SIGKILL, or a slow request is cut mid-response.
const drainBudget = ms('SHUTDOWN_DELAY_MS', 0) + ms('DRAIN_TIMEOUT_MS', 8000);

// V8 sizes a worker's heap for the whole machine unless told otherwise: on a large host it lets
// old space grow to ~4x the live data before collecting, and each young semi-space to 64 MiB.
// Measured with 10,000 sites (bench/README.md): on V8's defaults a worker's RSS was ~400 MiB
// after touching every site and ~650-700 MiB after a minute of SSR load; with these flags
// ~280-300 and ~350-430 MiB. A bound below 2 GiB also lowers V8's growth factor (1.6x at 1 GiB,
// 1.4x at 512 MiB), which is where the memory comes from and what it costs: more full
// collections, so SSR on render-cache misses lost 10-25 % at 1 GiB and 15-40 % at 512 MiB in
// the same A/B runs. The semi-space is set explicitly because bounding old space alone also
// shrinks the young generation, so short-lived render objects were promoted.
// The bound leaves room for the content cache (SITE_CACHE_MAX_MB, the one large thing on the V8
// heap; the render cache holds Buffers, outside it). WORKER_HEAP_MB=0 drops it.
const siteCacheMb = ms('SITE_CACHE_MAX_MB', 128);
const heapMb = ms('WORKER_HEAP_MB', Math.max(1024, 4 * siteCacheMb + 256));
export const workerNodeArgs = [...(heapMb > 0 ? [`--max-old-space-size=${heapMb}`] : []), '--max-semi-space-size=16'];

export const apps = [
  {
    name: 'astro-multi-tenant',
    script: 'astro-multi-tenant/server/main.ts',
    exec_mode: 'cluster',
    node_args: workerNodeArgs,
    instances,
    // The worker sends process.send('ready') once it listens, the host index is built and the
    // Astro renderer is loaded; only then does PM2 stop the old worker during a reload.
    wait_ready: true,
    listen_timeout: 15000,
    kill_timeout: drainBudget + 2000,
    // SIGINT (not a 'shutdown' message): the same path as Ctrl-C and SIGTERM from Kubernetes.
    shutdown_with_message: false,
    max_memory_restart: process.env.MAX_MEMORY_RESTART || '1G',
    // Logs are JSON lines on stdout (pino). pm2-runtime passes them through; the PM2 daemon writes
    // them to $PM2_HOME/logs, one file for all workers, each line carrying its pid.
    merge_logs: true,
    // npm start (pm2-runtime) already streams logs to stdout; cli/start.ts sets these to
    // /dev/null so pm2-runtime does not also fill unrotated files in ~/.pm2/logs.
    ...(process.env.PM2_OUT_FILE ? { out_file: process.env.PM2_OUT_FILE } : {}),
    ...(process.env.PM2_ERROR_FILE ? { error_file: process.env.PM2_ERROR_FILE } : {}),
    time: false,
    env: {
      NODE_ENV: 'production',
    },
  },
];
