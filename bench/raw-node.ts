/**
 * The ceiling for Node: plain `node:http` answering every request with the exact bytes the host
 * sent for the benchmarked page (BODY_FILE), on HOST:PORT. Same server options as the host.
 */
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';

const file = process.env.BODY_FILE;
if (!file) throw new Error('BODY_FILE is required');
const body = readFileSync(file);
const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/html', 'Content-Length': body.length });
  res.end(req.method === 'HEAD' ? undefined : body);
});
server.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? '127.0.0.1', () => {
  const address = server.address();
  console.log(JSON.stringify({ msg: 'listening', port: typeof address === 'object' && address ? address.port : undefined, bytes: body.length }));
});
process.on('SIGTERM', () => server.close(() => process.exit(0)).closeAllConnections());
