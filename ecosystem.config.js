// PM2 process file. ESM named export: PM2 require()s this file, and Node 24 returns the module
// namespace, whose `apps` is what PM2 reads.
const instances = process.env.INSTANCES && process.env.INSTANCES !== 'max' ? Number(process.env.INSTANCES) : 'max';

export const apps = [
  {
    name: 'astro-multi-tenant',
    script: 'astro-multi-tenant/server/main.ts',
    exec_mode: 'cluster',
    instances,
    // The worker sends process.send('ready') once it listens and the host index is built.
    wait_ready: true,
    listen_timeout: 15000,
    // Longer than the server's own drain deadline (8 s), so PM2 never SIGKILLs a draining worker.
    kill_timeout: 10000,
    shutdown_with_message: false,
    max_memory_restart: process.env.MAX_MEMORY_RESTART || '1G',
    merge_logs: true,
    env: {
      NODE_ENV: 'production',
    },
  },
];
