// A Nest TCP microservice in its own process, so tests can SIGTERM it (it
// deregisters, drains, closes) or SIGKILL it (a crash). Plain JavaScript
// with Nest's decorators applied by hand (child processes run without a
// TypeScript compiler). Env:
//   PORT, ID                      where it listens, its instance id (what `whoami` answers)
//   DISCOVERY_DIR                 registers as SERVICE (default 'orders') in the `local` backend there;
//                                 without it the server registers nowhere
//   TTL, DRAIN_MS, WEIGHT         registration TTL (s), drain (ms) and the instance's weight
//   DELAY_MS                      every request handler answers this much later
//   TLS_CERT, TLS_KEY             serve TLS with these PEM files
//   LOG_FILE                      one line per handled request or event: `<kind> <pattern> <id>` (written
//                                 before the answer, synchronously, so a crash cannot lose a line)
// Exits when its parent dies.
import 'reflect-metadata';
import { appendFileSync, readFileSync } from 'node:fs';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventPattern, MessagePattern, RpcException, Transport } from '@nestjs/microservices';
import { Observable } from 'rxjs';
import { DiscoveryModule } from '../../../dist/index.js';

const env = process.env;
const id = env.ID ?? 'tcp-server';
const port = Number(env.PORT);
const delayMs = Number(env.DELAY_MS ?? 0);
const record = (kind, pattern, key) => env.LOG_FILE && appendFileSync(env.LOG_FILE, `${kind} ${pattern} ${key}\n`);
const later = (value) => (delayMs ? new Promise((resolve) => setTimeout(() => resolve(value), delayMs)) : value);

class Handlers {
  whoami() {
    return later({ instance: id });
  }
  echo(data) {
    return later({ instance: id, data });
  }
  /** Not idempotent: every call is recorded; the caller checks that none ran twice. */
  create(data) {
    record('request', 'create', data.id);
    return later({ instance: id, id: data.id });
  }
  /** Idempotent (a read): recorded too, to count how often it ran. */
  read(data) {
    record('request', 'read', data.id);
    return later({ instance: id, id: data.id });
  }
  sum(data) {
    return data.numbers.reduce((a, b) => a + b, 0);
  }
  /** Answers `data.count` values, `data.gapMs` apart: a stream reply. */
  stream(data) {
    return new Observable((subscriber) => {
      let sent = 0;
      const timer = setInterval(() => {
        subscriber.next({ instance: id, n: ++sent });
        if (sent === data.count) {
          clearInterval(timer);
          subscriber.complete();
        }
      }, data.gapMs ?? 5);
      return () => clearInterval(timer);
    });
  }
  slow(data) {
    return new Promise((resolve) => setTimeout(() => resolve({ instance: id }), data.ms));
  }
  fail() {
    throw new RpcException({ code: 'refused', instance: id });
  }
  tick(data) {
    record('event', 'tick', data.id);
  }
}

const method = (name) => Object.getOwnPropertyDescriptor(Handlers.prototype, name);
for (const name of ['whoami', 'echo', 'create', 'read', 'stream', 'slow', 'fail'])
  MessagePattern(name)(Handlers.prototype, name, method(name));
MessagePattern({ cmd: 'sum' })(Handlers.prototype, 'sum', method('sum'));
EventPattern('tick')(Handlers.prototype, 'tick', method('tick'));
Controller()(Handlers);

const imports = env.DISCOVERY_DIR
  ? [
      DiscoveryModule.forRoot({
        backend: 'local',
        backendConfig: { dir: env.DISCOVERY_DIR },
        instance: { service: env.SERVICE ?? 'orders', id, port, weight: Number(env.WEIGHT ?? 1) },
        registration: { ttl: Number(env.TTL ?? 30), drainMs: Number(env.DRAIN_MS ?? 500) },
      }),
    ]
  : [];
class ServerModule {}
Module({ imports, controllers: [Handlers] })(ServerModule);

const tlsOptions = env.TLS_CERT ? { cert: readFileSync(env.TLS_CERT), key: readFileSync(env.TLS_KEY) } : undefined;
const app = await NestFactory.createMicroservice(ServerModule, {
  transport: Transport.TCP,
  options: { host: '127.0.0.1', port, tlsOptions },
  logger: ['error', 'warn'],
});
app.enableShutdownHooks();
await app.listen();
console.log(`${id} listening on 127.0.0.1:${port}`);

const parent = process.ppid;
setInterval(() => process.ppid !== parent && process.exit(0), 500).unref();
