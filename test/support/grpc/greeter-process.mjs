// A Greeter server in its own process, so tests can SIGKILL it like a crash.
// Env: PORT, ID, DELAY_MS. Exits when its parent dies.
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { join } from 'node:path';

const proto = join(import.meta.dirname, '../../../sample/01-greeter/protos/greeter.proto');
const pkg = grpc.loadPackageDefinition(loadSync(proto, { keepCase: true, defaults: true }));
const id = process.env.ID ?? 'greeter';
const delayMs = Number(process.env.DELAY_MS ?? 0);
const server = new grpc.Server({ 'grpc.so_reuseport': 0 });
server.addService(pkg.greeter.Greeter.service, {
  SayHello: (call, callback) => {
    const answer = () => callback(null, { message: `Hello, ${call.request.name}!`, instance: id });
    if (delayMs) setTimeout(answer, delayMs);
    else answer();
  },
});
server.bindAsync(`127.0.0.1:${process.env.PORT}`, grpc.ServerCredentials.createInsecure(), (error) => {
  if (error) {
    console.error(error.message);
    process.exit(1);
  }
});
const parent = process.ppid;
setInterval(() => process.ppid !== parent && process.exit(0), 500).unref();
process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
