import { createServer } from 'node:net';
import type { DiscoveryEvent } from '../../../lib/index.js';
import { MAX_RECONNECT_BACKOFF_MS } from '../../../lib/transports/grpc/channel-pool.js';
import { expect } from 'vitest';
import { waitFor } from '../../support/wait-for.js';
import { FAULT_TTL_S } from './fault-backends.js';
import { expectLoadHeld, MAX_SKIPPED_SHARE } from './fault-context.js';
import { nextSequence } from './event-sequence.js';
import { helloThrough, holdFault } from './fault-harness.js';
import { ServiceProcess } from './service-process.js';
import type { FaultScenario } from './fault-scenarios.js';

/*
 * Faults of the service instances: rolling restart, SIGKILL, a restart on
 * the same address while still listed, flapping, every instance unhealthy.
 * Where a scenario claims an order ("fails only while listed", "unlisted
 * before it exits"), it compares event sequences, not clock readings.
 * (Five scenarios, slightly over 300 lines: each is one readable piece.)
 */
const TTL_MS = FAULT_TTL_S * 1000;
/** How long after its TTL a crashed instance may still be listed: registry timers (etcd lease checks, Consul check reaping, folder rescans) plus a loaded machine. */
const LEAVE_SLACK_MS = 3_000;
/** switchyard's cap on gRPC's reconnect backoff for an endpoint the registry still lists. */
const RECONNECT_CAP_MS = MAX_RECONNECT_BACKOFF_MS;
/** Up/down cycles of the flapping instance (2 s down, 2 s up each). */
const FLAP_CYCLES = 2;
const skippedAtMost = `at most ${MAX_SKIPPED_SHARE * 100} % of the calls due in the fault window skipped by the load generator`;

const rollingRestart: FaultScenario = {
  scenario: 'rolling-restart',
  title: 'rolling restart of 3 instances under 500 calls/s',
  asserted: ({ registers }) =>
    registers
      ? `one instance at a time: SIGTERM (deregister, drain 300 ms, stop), then start again on its port; zero failed calls, ${skippedAtMost} (first stop until every instance served again); a registry read made after each process exited no longer lists it (deregistration comes before exit); every instance serves again afterwards`
      : `one instance at a time: unpublished, SIGTERMed (drain 300 ms) once the registry no longer lists it, and replaced by a new process on a new address that is then published; zero failed calls, ${skippedAtMost} (first unpublish until every replacement served); every replacement serves`,
  async run(ctx, details) {
    const { backend } = ctx;
    const service = ctx.freshService('rolling');
    const originals = await ctx.startInstances(service, 3, { drainMs: 300 });
    let current = [...originals];
    const { client, registryView } = await ctx.openClient(service);
    await client.ready({ minEndpoints: 3, timeoutMs: 15_000 });
    const load = ctx.startLoad(client, 500);
    await load.flowing(150);
    const restartedAt: Record<string, number> = {};
    const listedAfterExit: Record<string, boolean> = {};
    const rollingFrom = Date.now();
    for (const instance of originals) {
      if (backend.registers) {
        await instance.stop();
        // Deregistration comes before the server stops: once the process exited, a fresh read of the registry does not list it.
        listedAfterExit[instance.id] = (await ctx.freshRead(service)).includes(instance.address);
        await instance.start();
      } else {
        // Records are configuration: a deployment takes the old address out, stops it, and publishes its replacement (a new address, like a new pod).
        current = current.filter((i) => i !== instance);
        await backend.publish(
          service,
          current.map((i) => i.port),
        );
        await waitFor(() => registryView.settledOn(current.map((i) => i.address)), {
          timeoutMs: 20_000,
          what: `${instance.address} unpublished`,
        });
        await instance.stop();
        const replacement = await ServiceProcess.start({ id: instance.id, service, drainMs: 300 });
        ctx.onCleanup(() => replacement.kill());
        current = [...current, replacement];
        await backend.publish(
          service,
          current.map((i) => i.port),
        );
      }
      restartedAt[instance.id] = Date.now();
      await waitFor(() => registryView.settledOn(current.map((i) => i.address)), {
        timeoutMs: 20_000,
        what: `${instance.id} listed again`,
      });
      await load.flowing(100);
    }
    const servedAgain = () =>
      originals.every((i) => load.records.some((r) => r.ok && r.instance === i.id && r.start > restartedAt[i.id]));
    await waitFor(servedAgain, { timeoutMs: 15_000, what: 'every restarted instance serving' });
    const rolledAt = Date.now();
    await load.stop();
    const summary = load.summary();
    Object.assign(details, summary);
    details.servedAfterRestart = Object.fromEntries(
      originals.map((i) => [
        i.id,
        load.records.filter((r) => r.ok && r.instance === i.id && r.start > restartedAt[i.id]).length,
      ]),
    );
    if (backend.registers) {
      details.listedAfterExit = listedAfterExit;
      expect(listedAfterExit).toEqual(Object.fromEntries(originals.map((i) => [i.id, false])));
    }
    expect(summary.failed, summary.firstErrors.join('; ')).toBe(0);
    expectLoadHeld(load, details, rollingFrom, rolledAt);
  },
};

const sigkillInstance: FaultScenario = {
  scenario: 'sigkill-instance',
  title: 'SIGKILL of an instance under load',
  asserted: ({ registers }) =>
    `two clients at 200 calls/s each. With retries on: zero failed calls, ${skippedAtMost} (kill until 200 more calls). With retries off: every failed call ended after the SIGKILL and started while that client still listed the instance` +
    (registers
      ? `; the instance leaves the registry within the TTL (2 s) plus ${LEAVE_SLACK_MS / 1000} s`
      : ' (the address stays published: records are configuration; the client drops it by outlier ejection)'),
  async run(ctx, details) {
    const { backend } = ctx;
    const service = ctx.freshService('sigkill');
    const instances = await ctx.startInstances(service, 3);
    const victim = instances[0];
    const withRetries = await ctx.openClient(service);
    const withoutRetries = await ctx.openClient(service, { retry: false });
    await withRetries.client.ready({ minEndpoints: 3, timeoutMs: 15_000 });
    await withoutRetries.client.ready({ minEndpoints: 3, timeoutMs: 15_000 });
    // "Leaves within the TTL" is about the registry's view, before the client's own outlier ejection.
    const registryView = withRetries.registryView;
    const retried = ctx.startLoad(withRetries.client, 200);
    const plain = ctx.startLoad(withoutRetries.client, 200);
    await retried.flowing(100);
    await plain.flowing(100);
    const killAt = Date.now();
    const killed = nextSequence();
    await victim.kill();
    let leftAt = Number.POSITIVE_INFINITY;
    if (backend.registers) {
      const left = () =>
        registryView.after(killed).find((e) => e.state !== 'stale' && !e.addresses.includes(victim.address));
      await waitFor(left, { timeoutMs: TTL_MS + 15_000, what: 'the killed instance leaves the registry' });
      leftAt = left()!.at;
      details.leftRegistryAfterMs = leftAt - killAt;
    }
    const unlisted = withRetries.sets.after(killed).find((e) => !e.addresses.includes(victim.address));
    if (unlisted) details.leftClientSetAfterMs = unlisted.at - killAt;
    await retried.flowing(200);
    await plain.flowing(200);
    const loadEnd = Date.now();
    await Promise.all([retried.stop(), plain.stop()]);
    const summary = retried.summary();
    Object.assign(details, summary);
    details.withoutRetries = { calls: plain.records.length, failed: plain.failures.length };
    expect(summary.failed, summary.firstErrors.join('; ')).toBe(0);
    expectLoadHeld(retried, details, killAt, loadEnd);
    // Without retries, a call fails only because of the kill, and only while its client could still pick the dead instance.
    for (const failure of plain.failures) {
      expect(failure.endSequence, `a call failed before the kill: ${failure.error}`).toBeGreaterThan(killed);
      expect(
        withoutRetries.sets.asOf(failure.startSequence)?.addresses,
        `a call failed after its client had dropped ${victim.address}: ${failure.error}`,
      ).toContain(victim.address);
    }
    if (backend.registers) expect(leftAt - killAt).toBeLessThanOrEqual(TTL_MS + LEAVE_SLACK_MS);
  },
};

const restartSameAddress: FaultScenario = {
  scenario: 'restart-same-address',
  title: 'an instance restarted on the same address while still listed',
  asserted: () =>
    `after 10 s down (still listed in DNS / xDS), at least 5 reconnect attempts, never more than ${(2 * RECONNECT_CAP_MS) / 1000} s apart (twice switchyard's 1 s cap; gRPC's own backoff would be waiting 6.5 s by then), and a call answers within ${(3 * RECONNECT_CAP_MS) / 1000} s of the instance being back`,
  notApplicable: ({ registers }) =>
    registers
      ? 'registering backends list a restarted instance anew, and a new endpoint gets a fresh channel (see the rolling restart)'
      : undefined,
  async run(ctx, details) {
    const service = ctx.freshService('same-address');
    const [instance] = await ctx.startInstances(service, 1);
    const { client } = await ctx.openClient(service, { retry: false });
    await client.ready({ timeoutMs: 15_000 });
    await helloThrough(client);
    await instance.kill();
    // While the instance is down, a listener on its port counts the client's connection attempts
    // (and refuses them), so the test knows where grpc's reconnect backoff stands.
    const attempts: number[] = [];
    const refuser = createServer((socket) => {
      attempts.push(Date.now());
      socket.destroy();
    });
    await new Promise<void>((resolve, reject) =>
      refuser.once('error', reject).listen(instance.port, '127.0.0.1', () => resolve()),
    );
    const gaps = () => attempts.slice(1).map((t, i) => t - attempts[i]);
    const downAt = Date.now();
    try {
      // Down for 10 s (the fault's duration): gRPC's own backoff (1 s x 1.6^n) would by then wait 6.5 s between attempts.
      await waitFor(
        async () => {
          await helloThrough(client, 300).catch(() => undefined);
          return Date.now() - downAt >= 10_000;
        },
        { timeoutMs: 20_000, intervalMs: 200, what: '10 s of downtime' },
      );
    } finally {
      await new Promise((resolve) => refuser.close(resolve));
    }
    details.maxReconnectGapMs = Math.max(0, ...gaps());
    details.reconnectAttempts = attempts.length;
    expect(attempts.length).toBeGreaterThanOrEqual(5);
    expect(Math.max(0, ...gaps())).toBeLessThan(2 * RECONNECT_CAP_MS);
    await instance.start();
    const backAt = Date.now();
    const answers = () =>
      helloThrough(client, 500).then(
        () => true,
        () => false,
      );
    await waitFor(answers, { timeoutMs: 20_000, intervalMs: 100, what: 'a call to the restarted instance' });
    details.answeredAfterMs = Date.now() - backAt;
    expect(Date.now() - backAt).toBeLessThanOrEqual(3 * RECONNECT_CAP_MS);
  },
};

const flapping: FaultScenario = {
  scenario: 'flapping-instance',
  title: 'a flapping instance (up/down every 2 s)',
  asserted: ({ registers }) =>
    `no thrash: over ${FLAP_CYCLES} cycles of one instance down 2 s / up 2 s (${registers ? 'SIGTERM: it leaves and rejoins the registry' : 'SIGKILL: its address stays published, as with a crash-looping pod'}), at 200 calls/s, the client set changes at most as often as the registry's own set plus 2 (one ejection, one return); zero failed calls, ${skippedAtMost} (the cycles)`,
  async run(ctx, details) {
    const { backend } = ctx;
    const service = ctx.freshService('flapping');
    const instances = await ctx.startInstances(service, 3, { drainMs: 100 });
    const flapper = instances[0];
    const { client, sets, registryView } = await ctx.openClient(service);
    await client.ready({ minEndpoints: 3, timeoutMs: 15_000 });
    const load = ctx.startLoad(client, 200);
    await load.flowing(100);
    const flapFrom = Date.now();
    for (let cycle = 0; cycle < FLAP_CYCLES; cycle++) {
      if (backend.registers) await flapper.stop();
      else await flapper.kill();
      await holdFault(2_000);
      await flapper.start();
      await holdFault(2_000);
    }
    const flapTo = Date.now();
    await load.flowing(200);
    await load.stop();
    const summary = load.summary();
    const clientChanges = sets.since(flapFrom).length;
    const registryChanges = registryView.since(flapFrom).length;
    Object.assign(details, summary, { clientSetChanges: clientChanges, registrySetChanges: registryChanges });
    expect(summary.failed, summary.firstErrors.join('; ')).toBe(0);
    expect(clientChanges).toBeLessThanOrEqual(registryChanges + 2);
    expectLoadHeld(load, details, flapFrom, flapTo);
  },
};

const allUnhealthy: FaultScenario = {
  scenario: 'all-unhealthy',
  title: 'every instance unhealthy',
  asserted: () =>
    `documented behaviour, at 100 calls/s: with the default panic threshold (50 %) the client enters panic mode (one warning, a panic event) and keeps balancing over all instances with zero failed calls (${skippedAtMost}: unhealthy until healthy again), and leaves it when they recover; with panic_threshold = 0 it serves nothing and pick() fails with NoEndpointsError "filtered", and serves all again after recovery`,
  async run(ctx, details) {
    const service = ctx.freshService('unhealthy');
    const instances = await ctx.startInstances(service, 3);
    const checks = {
      healthCheck: {
        enabled: true,
        kind: 'grpc',
        interval: 0.5,
        timeout: 0.25,
        failureThreshold: 2,
        successThreshold: 1,
        jitter: 0,
      },
    };
    const panicking = await ctx.openClient(service, { extra: checks });
    const failFast = await ctx.openClient(service, { extra: { ...checks, panicThreshold: 0 } });
    const events: DiscoveryEvent[] = [];
    const subscription = panicking.client.events$.subscribe((e) => events.push(e));
    ctx.onCleanup(() => subscription.unsubscribe());
    const panicEvents = () => events.filter((e): e is Extract<DiscoveryEvent, { type: 'panic' }> => e.type === 'panic');
    await panicking.client.ready({ minEndpoints: 3, timeoutMs: 15_000 });
    await failFast.client.ready({ minEndpoints: 3, timeoutMs: 15_000 });
    const load = ctx.startLoad(panicking.client, 100);
    await load.flowing(50);

    const unhealthyAt = Date.now();
    for (const i of instances) i.signal('SIGUSR1');
    await waitFor(() => panicking.client.healthStatus.panic, { timeoutMs: 15_000, what: 'panic mode' });
    // Fail fast: nothing healthy and no panic mode, so nothing is served, and pick() says why.
    await waitFor(() => failFast.client.snapshot().size === 0, {
      timeoutMs: 15_000,
      what: 'the fail-fast client serving nothing',
    });
    expect(failFast.client.snapshot().state).toBe('ok');
    expect(() => failFast.client.pick()).toThrow(/every known instance was filtered out or is unhealthy/);
    await load.flowing(100);
    expect(panicking.client.snapshot().size).toBe(3);
    expect(panicEvents().some((e) => e.active)).toBe(true);
    expect(panicking.logger.lines.filter((l) => l.startsWith('warn') && /panic threshold/.test(l))).toHaveLength(1);

    for (const i of instances) i.signal('SIGUSR2');
    await waitFor(() => panicking.client.healthStatus.panic === false, { timeoutMs: 15_000, what: 'panic mode over' });
    await waitFor(() => failFast.client.snapshot().size === 3, {
      timeoutMs: 15_000,
      what: 'the fail-fast client serving again',
    });
    const healthyAt = Date.now();
    await load.flowing(50);
    await load.stop();
    const summary = load.summary();
    Object.assign(details, summary, { panicEvents: panicEvents().length });
    expect(summary.failed, summary.firstErrors.join('; ')).toBe(0);
    expect(panicEvents().some((e) => !e.active)).toBe(true);
    expectLoadHeld(load, details, unhealthyAt, healthyAt);
  },
};

export const INSTANCE_FAULTS: readonly FaultScenario[] = [
  rollingRestart,
  sigkillInstance,
  restartSameAddress,
  flapping,
  allUnhealthy,
];
