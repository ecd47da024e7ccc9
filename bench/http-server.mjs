// One keep-alive HTTP server on 127.0.0.1 (port from argv[2], 0 = any) for
// the HTTP benchmark: GET /hello answers a small JSON with its id. Prints
// "listening <port>" once bound. Started three times, one process each.
import { createServer } from 'node:http';

const id = process.env.ID ?? 'server';
const body = Buffer.from(JSON.stringify({ instance: id, message: 'hello' }));
const server = createServer((request, response) => {
  request.resume();
  response.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  response.end(body);
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.once('SIGTERM', () => server.close(() => process.exit(0)));
