// A Nest HTTP app (NestFactory.create on Express or Fastify) in its own
// process, registered as `orders` through switchyard, so tests can SIGKILL
// it like a crash or SIGTERM it like a rolling restart. It counts what it
// saw: the ids of POSTs, the requests answered while draining, the
// connections it accepted. Decorators are applied by hand (plain JS).
// Env: PORT, ID, PLATFORM (express | fastify), DISCOVERY (JSON options of
// DiscoveryModule.forRoot), TLS_CERT + TLS_KEY (https) + TLS_CA (client certificates), DELAY_MS, SEEN_FILE
// (each POST id is appended there at once, so the count survives a SIGKILL).
import 'reflect-metadata';
import { Body, Controller, Get, HttpCode, Module, Post, Query, Res } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TerminusModule, HealthCheckService } from '@nestjs/terminus';
import { appendFileSync, readFileSync } from 'node:fs';
import { DiscoveryHealthIndicator, DiscoveryModule } from '../../../dist/index.js';

const id = process.env.ID ?? 'orders';
const port = Number(process.env.PORT);
const platform = process.env.PLATFORM ?? 'express';
const delayMs = Number(process.env.DELAY_MS ?? 0);
const discovery = JSON.parse(process.env.DISCOVERY ?? '{}');

const seen = { posts: [], gets: 0, duringDrain: 0, connections: 0 };
let draining = false;
let overloadedUntil = 0;
let overloadSeconds = 0;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Answers with the framework's own response object (Express `res` or Fastify `reply`). */
function send(res, status, body, headers = {}) {
  for (const [k, v] of Object.entries(headers)) res.header(k, v);
  if (typeof res.code === 'function') return res.code(status).send(body);
  return res.status(status).json(body);
}

class OrdersController {
  constructor(health, indicator) {
    this.health = health;
    this.indicator = indicator;
  }

  async whoami(res, delay) {
    seen.gets++;
    if (draining) seen.duringDrain++;
    if (Date.now() < overloadedUntil)
      return send(res, 429, { instance: id }, { 'retry-after': String(overloadSeconds) });
    const wait = Number(delay ?? delayMs);
    if (wait > 0) await sleep(wait);
    return send(res, 200, { instance: id });
  }

  create(body) {
    seen.posts.push(String(body?.id));
    if (process.env.SEEN_FILE) appendFileSync(process.env.SEEN_FILE, `${body?.id}\n`);
    if (draining) seen.duringDrain++;
    return { instance: id, id: body?.id };
  }

  stats() {
    return { instance: id, ...seen, draining };
  }

  overload(seconds, forSeconds) {
    overloadSeconds = Number(seconds);
    overloadedUntil = Date.now() + Number(forSeconds ?? seconds) * 1000;
    return { instance: id, overloadedUntil };
  }

  check() {
    return this.health.check([() => this.indicator.isHealthy('discovery')]);
  }
}

// @Controller('api') with its routes, as the decorators would do.
const method = (name, ...decorators) => {
  const descriptor = Object.getOwnPropertyDescriptor(OrdersController.prototype, name);
  for (const decorate of decorators) decorate(OrdersController.prototype, name, descriptor);
};
const param = (name, index, decorate) => decorate(OrdersController.prototype, name, index);
method('whoami', Get('api/whoami'));
param('whoami', 0, Res());
param('whoami', 1, Query('delayMs'));
method('create', Post('api/orders'), HttpCode(201));
param('create', 0, Body());
method('stats', Get('api/stats'));
method('overload', Post('api/overload'), HttpCode(200));
param('overload', 0, Query('retryAfter'));
param('overload', 1, Query('for'));
method('check', Get('health'));
Reflect.defineMetadata('design:paramtypes', [HealthCheckService, DiscoveryHealthIndicator], OrdersController);
Controller()(OrdersController);

class OrdersModule {}
Module({
  imports: [
    DiscoveryModule.forRoot({
      ...discovery,
      instance: { service: 'orders', id, host: '127.0.0.1', port, ...(discovery.instance ?? {}) },
    }),
    TerminusModule,
  ],
  controllers: [OrdersController],
})(OrdersModule);

// https; with TLS_CA, clients must present a certificate signed by it.
const httpsOptions = process.env.TLS_CERT
  ? {
      cert: readFileSync(process.env.TLS_CERT),
      key: readFileSync(process.env.TLS_KEY),
      ...(process.env.TLS_CA
        ? { ca: readFileSync(process.env.TLS_CA), requestCert: true, rejectUnauthorized: true }
        : {}),
    }
  : undefined;
let app;
if (platform === 'fastify') {
  const { FastifyAdapter } = await import('@nestjs/platform-fastify');
  app = await NestFactory.create(OrdersModule, new FastifyAdapter({ https: httpsOptions }), {
    logger: ['error', 'warn'],
  });
} else {
  app = await NestFactory.create(OrdersModule, { logger: ['error', 'warn'], httpsOptions });
}
app.enableShutdownHooks();
// The drain starts with the shutdown hooks: count what is answered from then on.
process.once('SIGTERM', () => {
  draining = true;
});
app.getHttpServer().on('connection', () => seen.connections++);
await app.listen(port, '127.0.0.1');
process.stdout.write(`listening ${port}\n`);

const parent = process.ppid;
setInterval(() => process.ppid !== parent && process.exit(0), 500).unref();
