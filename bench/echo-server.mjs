// One raw-bytes Echo server on 127.0.0.1 (port from argv[2], 0 = any;
// added latency in ms from argv[3]); prints "listening <port>" once bound.
// Started three times by the echo and overload benches, each in its own process.
import * as grpc from '@grpc/grpc-js';
import { ECHO_SERVICE } from './support/echo.mjs';

const server = new grpc.Server();
const delayMs = Number(process.argv[3] ?? 0);
server.addService(ECHO_SERVICE, {
  Echo: (call, callback) =>
    delayMs > 0 ? setTimeout(() => callback(null, call.request), delayMs) : callback(null, call.request),
});
server.bindAsync(`127.0.0.1:${process.argv[2] ?? 0}`, grpc.ServerCredentials.createInsecure(), (error, port) => {
  if (error) throw error;
  process.stdout.write(`listening ${port}\n`);
});
process.once('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
