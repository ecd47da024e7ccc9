// A Greeter server in its own process whose behaviour the test steers while
// it runs, for overload tests: added latency, a share of calls answered
// RESOURCE_EXHAUSTED (or another status), and counters of what it saw (calls,
// refusals, the most calls in flight at once). Steered through a second
// service on the same port, /test.Control/Set (JSON in, JSON stats out).
// Env: PORT, ID. Exits when its parent dies.
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { join } from 'node:path';

const proto = join(import.meta.dirname, '../../../sample/01-greeter/protos/greeter.proto');
const pkg = grpc.loadPackageDefinition(loadSync(proto, { keepCase: true, defaults: true }));
const id = process.env.ID ?? 'greeter';
const behaviour = { delayMs: 0, rejectShare: 0, rejectCode: grpc.status.RESOURCE_EXHAUSTED };
const stats = { calls: 0, rejected: 0, inFlight: 0, maxInFlight: 0 };
let seed = Number(process.env.SEED ?? 7);
const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000;

const json = {
  path: '/test.Control/Set',
  requestStream: false,
  responseStream: false,
  requestSerialize: (v) => Buffer.from(JSON.stringify(v)),
  requestDeserialize: (b) => JSON.parse(b.toString()),
  responseSerialize: (v) => Buffer.from(JSON.stringify(v)),
  responseDeserialize: (b) => JSON.parse(b.toString()),
};

const server = new grpc.Server({ 'grpc.so_reuseport': 0 });
server.addService(pkg.greeter.Greeter.service, {
  SayHello: (call, callback) => {
    stats.calls++;
    stats.inFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    const answer = () => {
      stats.inFlight--;
      if (behaviour.rejectShare > 0 && random() < behaviour.rejectShare) {
        stats.rejected++;
        callback({ code: behaviour.rejectCode, details: `${id} refuses on purpose` });
      } else callback(null, { message: `Hello, ${call.request.name}!`, instance: id });
    };
    if (behaviour.delayMs) setTimeout(answer, behaviour.delayMs);
    else answer();
  },
});
server.addService(
  { Set: json },
  {
    Set: (call, callback) => {
      const request = call.request ?? {};
      if (request.reset) Object.assign(stats, { calls: 0, rejected: 0, maxInFlight: stats.inFlight });
      for (const key of Object.keys(behaviour)) if (request[key] !== undefined) behaviour[key] = request[key];
      callback(null, { ...stats, ...behaviour });
    },
  },
);
server.bindAsync(`127.0.0.1:${process.env.PORT}`, grpc.ServerCredentials.createInsecure(), (error) => {
  if (error) {
    console.error(error.message);
    process.exit(1);
  }
});
const parent = process.ppid;
setInterval(() => process.ppid !== parent && process.exit(0), 500).unref();
process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
