import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { copySites, get, removeDir, startServer, type RunningServer } from '../helpers/server.ts';
import { eventually } from '../helpers/eventually.ts';

/**
 * Rule 3 of the threat model (docs/security.md): sizes are checked before reading. Each file here
 * is 700 MB and sparse (no disk used, instant to make); reading one whole would add hundreds of MiB
 * to the server's memory, so the server's resident set size is watched around every request.
 */
const HUGE = 700 * 1024 * 1024;
/** Far below 700 MB, far above what a request for a small page costs. */
const RSS_GROWTH_LIMIT = 100 * 1024 * 1024;

let server: RunningServer;
let sitesDir: string;

async function sparse(path: string) {
  await writeFile(path, '');
  await truncate(path, HUGE);
}

/** The server process's resident set size, in bytes (VmRSS in /proc/<pid>/status). */
async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)![1]) * 1024;
}

/** Runs `work` while sampling the server's RSS every 20 ms; returns the result and the largest growth seen. */
async function watchingRss<T>(work: () => Promise<T>): Promise<{ value: T; growth: number }> {
  const before = await rssOf(server.pid);
  let peak = before;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, await rssOf(server.pid));
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  try {
    const value = await work();
    peak = Math.max(peak, await rssOf(server.pid));
    return { value, growth: peak - before };
  } finally {
    sampling = false;
    await sampler;
  }
}

function logged(file: string, limit: string) {
  return eventually(async () => server.logs.find((l) => l.includes(file) && l.includes(`over the limit of ${limit}`)), (l) => l !== undefined, { what: `a log line naming ${file} and the ${limit} limit`, deadlineMs: 2000 });
}

beforeAll(async () => {
  sitesDir = await copySites();
  const acme = join(sitesDir, 'acme');
  await sparse(join(acme, 'pages/huge.md'));
  await sparse(join(acme, 'public/huge.bin'));
  // docs signs members in; its members.json becomes 700 MB.
  await sparse(join(sitesDir, 'docs/members.json'));
  await mkdir(join(sitesDir, 'bigconfig/pages'), { recursive: true });
  await writeFile(join(sitesDir, 'bigconfig/pages/index.md'), '---\ntitle: Big config\n---\n');
  await sparse(join(sitesDir, 'bigconfig/site.json'));
  server = await startServer(sitesDir, { CONTENT_CHECK_MS: '0' });
});

afterAll(async () => {
  await server?.stop();
  await removeDir(sitesDir);
});

describe('content files over their limit are refused unread', () => {
  it('answers a 700 MB page with 503 and no-store, every time, logging the file and the 1 MiB limit, and memory stays flat', async () => {
    const { value: answers, growth } = await watchingRss(async () => {
      const out = [];
      for (let i = 0; i < 5; i++) out.push(await get(server.port, 'acme.example', '/huge'));
      return out;
    });
    for (const res of answers) {
      expect(res.status).toBe(503);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers['retry-after']).toBe('30');
    }
    expect(growth).toBeLessThan(RSS_GROWTH_LIMIT);
    await logged('sites/acme/pages/huge.md', '1 MiB');
    // The other pages of the site are untouched.
    expect((await get(server.port, 'acme.example', '/about')).status).toBe(200);
  });

  it('answers a site whose site.json is 700 MB with 503, logging the file and the 256 KiB limit, and memory stays flat', async () => {
    const { value: res, growth } = await watchingRss(() => get(server.port, 'bigconfig.localhost', '/'));
    expect(res.status).toBe(503);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(growth).toBeLessThan(RSS_GROWTH_LIMIT);
    await logged('sites/bigconfig/site.json', '256 KiB');
  });

  it('refuses sign-in on a site whose members.json is 700 MB (nobody can sign in), logging the file and the 32 MiB limit, and memory stays flat', async () => {
    const { value: status, growth } = await watchingRss(async () => {
      const form = await get(server.port, 'docs.example', '/_platform/session/sign-in');
      const cookies = (form.headers['set-cookie'] ?? []).map((c) => c.split(';')[0]).join('; ');
      const fields = Object.fromEntries([...form.body.matchAll(/<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"/g)].map((m) => [m[1]!, m[2]!.replaceAll('&amp;', '&')]));
      const body = new URLSearchParams({ ...fields, email: 'demo@docs.example', password: 'docs-demo-password', next: '/' }).toString();
      return new Promise<number>((resolve, reject) => {
        const req = request(
          { host: '127.0.0.1', port: server.port, path: '/_platform/session/sign-in', method: 'POST', agent: false, headers: { host: 'docs.example', origin: 'http://docs.example', cookie: cookies, 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    });
    expect(status).toBe(401);
    expect(growth).toBeLessThan(RSS_GROWTH_LIMIT);
    await logged('sites/docs/members.json', '32 MiB');
  });
});

describe('a 700 MB public file is streamed, never held in memory', () => {
  it('answers a range of it with exactly those bytes', async () => {
    const res = await get(server.port, 'acme.example', '/huge.bin', { Range: 'bytes=1000-1099' });
    expect(res.status).toBe(206);
    expect(res.headers['content-range']).toBe(`bytes 1000-1099/${HUGE}`);
    expect(res.body).toBe('\0'.repeat(100));
  });

  it('holds back while a client reads slowly: the server\'s memory stays flat instead of taking in the file', async () => {
    const { value: received, growth } = await watchingRss(
      () =>
        new Promise<number>((resolve, reject) => {
          const req = request({ host: '127.0.0.1', port: server.port, path: '/huge.bin', agent: false, headers: { host: 'acme.example' } }, (res) => {
            expect(res.statusCode).toBe(200);
            expect(res.headers['content-length']).toBe(String(HUGE));
            let bytes = 0;
            res.on('data', (chunk: Buffer) => {
              bytes += chunk.length;
              // Read a first megabyte, then stop reading for a second: a server that buffers the
              // file reads all of it meanwhile; one that streams waits for the client.
              if (bytes >= 1024 * 1024 && !res.isPaused()) {
                res.pause();
                setTimeout(() => {
                  req.destroy();
                  resolve(bytes);
                }, 1000);
              }
            });
            res.on('error', () => {});
          });
          req.on('error', (error) => (error.message.includes('aborted') || (error as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(error)));
          req.end();
        }),
    );
    expect(received).toBeGreaterThanOrEqual(1024 * 1024);
    expect(growth).toBeLessThan(RSS_GROWTH_LIMIT);
    // The server is fine afterwards (the descriptor it held for the stream was let go).
    expect((await get(server.port, 'acme.example', '/huge.bin', { Range: 'bytes=0-0' })).status).toBe(206);
  });
});
