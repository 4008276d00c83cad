import type { Cluster, Redis } from 'ioredis';
import type { DomainRecord, DomainStateStore } from './domain-state.ts';

const STATES = new Set(['pending', 'verified', 'failing', 'failed']);

// Writes a record unless the hash holds a later check of that domain: of two machines checking one
// domain at once, the later check wins, as in the file store. One key, so it works on Redis Cluster.
const PUT_SCRIPT = `
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local ok, decoded = pcall(cjson.decode, current)
  if ok and type(decoded) == 'table' and tonumber(decoded.checkedAt) and tonumber(decoded.checkedAt) > tonumber(ARGV[3]) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1`;

/**
 * Domain verification records in Redis, shared by every machine: one hash, `<key>` (default
 * `amt:domains`), field = domain, value = the record as JSON. `load` is one HGETALL (each worker
 * calls it once per verifier tick, at most every 30 s: ~150 bytes a domain); `put` one script call
 * per domain. Errors (Redis down, command timeout) are thrown: the verifier logs them and keeps the
 * records it loaded last, so serving decisions never wait on Redis.
 */
export function createRedisDomainStateStore(client: Redis | Cluster, key = 'amt:domains'): DomainStateStore {
  return {
    location: `redis ${key}`,
    async load() {
      const raw = await client.hgetall(key);
      const out = new Map<string, DomainRecord>();
      for (const [domain, json] of Object.entries(raw)) {
        try {
          const r = JSON.parse(json) as DomainRecord;
          if (r && typeof r.site === 'string' && STATES.has(r.state) && typeof r.checkedAt === 'number') out.set(domain, r);
        } catch {
          // A field this version cannot read is skipped: that domain counts as pending and is checked again.
        }
      }
      return out;
    },
    async put(records) {
      await Promise.all([...records].map(([domain, record]) => client.eval(PUT_SCRIPT, 1, key, domain, JSON.stringify(record), String(record.checkedAt))));
    },
  };
}
