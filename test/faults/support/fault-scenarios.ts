import { afterAll, afterEach, beforeAll, describe, expect } from 'vitest';
import { createServer } from 'node:net';
import type { Observable } from 'rxjs';
import {
  Discovery,
  NoEndpointsError,
  resolveDiscoveryConfig,
  type DiscoveryOptions,
  type RetryOptions,
  type ServiceClient,
} from '../../../lib/index.js';
import type { DiscoveryLogger } from '../../../lib/registry/registry.interface.js';
import { waitFor } from '../../support/wait-for.js';
import { FAULT_TTL_S, NotApplicable, type FaultBackend } from './fault-backends.js';
import { EndpointRecorder, helloThrough, holdFault, LoadGenerator, ServiceProcess } from './fault-harness.js';
import { reliabilityTest, ResultsFile, type ResultSpec } from './reliability-results.js';

/** Retries "on" in every scenario: gRPC-style, with a budget that a handful of failures in a burst cannot exhaust. */
export const RETRIES_ON: RetryOptions = {
  maxAttempts: 3,
  initialBackoffMs: 25,
  maxBackoffMs: 250,
  budget: { maxTokens: 100, tokenRatio: 1 },
};
const TTL_MS = FAULT_TTL_S * 1000;
/** How long after its TTL a crashed instance may still be listed: registry timers (etcd lease checks, Consul check reaping, folder rescans) plus a loaded machine. */
const LEAVE_SLACK_MS = 3_000;
/** Up/down cycles of the flapping instance (2 s down, 2 s up each). */
const FLAP_CYCLES = 2;

/** The scenarios of the issue, as table rows: id, title, what is asserted. */
export const SCENARIOS = {
  downAtStart: {
    scenario: 'down-at-start',
    title: 'registry down at client start, then up',
    asserted:
      'the client starts without error (first set stale, pick() says unreachable, endpoints$ never errors) and converges to every instance once the registry is up; calls then succeed',
  },
  restartUnderLoad: {
    scenario: 'restart-under-load',
    title: 'registry restarted under load',
    asserted:
      'zero failed calls at 300 calls/s while the registry restarts; every stale set keeps all endpoints (last known good); every registration is restored (a fresh client sees all instances)',
  },
  stallBeyondTtl: {
    scenario: 'stall-beyond-ttl',
    title: 'registry stalled (SIGSTOP) beyond the TTL',
    asserted:
      'the client goes stale but keeps serving (zero failed calls at 100 calls/s); after SIGCONT it recovers to exactly the instances, no duplicate ids or addresses, and a fresh client sees each instance once',
  },
  rollingRestart: {
    scenario: 'rolling-restart',
    title: 'rolling restart of 3 instances under 500 calls/s',
    asserted:
      'SIGTERM (deregister, drain 300 ms, stop) and start again, one instance at a time: zero failed calls, every instance serves again afterwards',
  },
  sigkillInstance: {
    scenario: 'sigkill-instance',
    title: 'SIGKILL of an instance under load',
    asserted:
      'with retries on: zero failed calls; with retries off: failures only until the instance leaves; it leaves endpoints$ within the TTL (2 s) plus registry slack',
  },
  restartSameAddress: {
    scenario: 'restart-same-address',
    title: 'an instance restarted on the same address while still listed',
    asserted:
      'after 10 s down (still listed in DNS / xDS), reconnect attempts stay at most ~1 s apart (gRPC alone would be at 6.5 s) and the restarted instance answers calls within 1.5 s of being back',
  },
  flapping: {
    scenario: 'flapping-instance',
    title: 'a flapping instance (up/down every 2 s)',
    asserted:
      "no thrash: over 2 up/down cycles (2 s each way) of one instance the client set changes at most as often as the registry's own set, plus one ejection and one return; zero failed calls",
  },
  allUnhealthy: {
    scenario: 'all-unhealthy',
    title: 'every instance unhealthy',
    asserted:
      'documented behaviour: with the default panic threshold (50%) the client enters panic mode (one warning, a panic event) and keeps balancing over all instances with zero failed calls, and leaves it when they recover; with panic_threshold = 0 it fails fast with NoEndpointsError "filtered"',
  },
  emptyVsUnreachable: {
    scenario: 'empty-vs-unreachable',
    title: 'empty versus unreachable registry',
    asserted:
      'zero instances gives state "empty" and NoEndpointsError reason "empty"; a registry that does not answer gives "stale" (unresolved), reason "unreachable" and a warning; the health report (state empty vs stale, registry reachable) and the switchyard_endpoint_set_stale metric tell them apart too',
  },
} as const;

/**
 * The health layer (active checks, outlier ejection, panic threshold) is
 * present when the configuration knows its keys; its scenarios are
 * recorded as "not yet" otherwise. Its API is reached without static types,
 * so this file compiles with or without it.
 */
function healthLayerPresent(): boolean {
  try {
    resolveDiscoveryConfig({ panicThreshold: 50, outlierDetection: { enabled: true } });
    return true;
  } catch {
    return false;
  }
}

/** The part of the health layer's report these scenarios read. */
interface HealthReport {
  registry: { reachable: boolean | 'unknown' };
  dependencies: Record<string, { state: string; status: string; reason?: string }>;
}

/** The parts of a ServiceClient the health layer adds. */
interface HealthAware {
  events$?: Observable<{ type: string; active?: boolean }>;
  healthStatus?: { total: number; healthy: number; served: number; panic: boolean };
}

/** A logger that keeps lines, for assertions on warnings. */
class LinesLogger implements DiscoveryLogger {
  readonly lines: string[] = [];
  log(m: string): void {
    this.lines.push(`log ${m}`);
  }
  warn(m: string): void {
    this.lines.push(`warn ${m}`);
  }
  error(m: string): void {
    this.lines.push(`error ${m}`);
  }
}

/**
 * Registers the fault scenarios for one backend: real registry
 * server, real instance processes, real calls. Each result (and each
 * scenario that does not apply, with the reason) lands in
 * test-artifacts/reliability/faults-<backend>.jsonl.
 *
 * @example
 * defineFaultScenarios(new EtcdFaultBackend());
 */
export function defineFaultScenarios(backend: FaultBackend): void {
  const results = new ResultsFile(`faults-${backend.name}`);
  const spec = (row: (typeof SCENARIOS)[keyof typeof SCENARIOS]): ResultSpec => ({
    suite: 'faults',
    backend: backend.name,
    ...row,
  });

  if (backend.unavailable) {
    for (const row of Object.values(SCENARIOS))
      results.notApplicable(spec(row), `not run: ${backend.unavailable}`, 'not-yet');
  }

  describe.skipIf(backend.unavailable !== undefined)(`fault scenarios: ${backend.name}`, () => {
    const cleanups: Array<() => unknown> = [];
    let registryDown = false;
    let stalled = false;
    let sequence = 0;
    const freshService = (name: string) => `${name}-${++sequence}`;

    beforeAll(() => backend.start(), 60_000);
    afterEach(async () => {
      // Whatever a scenario did to the registry, the next one starts with it running.
      if (stalled) backend.resumeRegistry();
      stalled = false;
      if (registryDown) await backend.startRegistry();
      registryDown = false;
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    }, 60_000);
    afterAll(() => backend.close(), 60_000);

    async function stopRegistry(): Promise<void> {
      registryDown = true;
      await backend.stopRegistry();
    }
    async function startRegistry(): Promise<void> {
      await backend.startRegistry();
      registryDown = false;
    }

    /** Starts instance processes of `service` (registering themselves, or published in DNS). */
    async function startInstances(
      service: string,
      count: number,
      options: { drainMs?: number; waitForRegistration?: boolean } = {},
    ): Promise<ServiceProcess[]> {
      const instances = await Promise.all(
        Array.from({ length: count }, (_, i) =>
          ServiceProcess.start({
            id: `${service}-i${i + 1}`,
            service,
            discovery: backend.registers ? backend.options() : undefined,
            drainMs: options.drainMs,
            waitForRegistration: options.waitForRegistration,
          }),
        ),
      );
      cleanups.push(() => Promise.all(instances.map((i) => i.kill())));
      if (!backend.registers)
        await backend.publish(
          service,
          instances.map((i) => i.port),
        );
      return instances;
    }

    /** A Discovery of its own with one client of `service`, recording its sets and log lines. */
    async function openClient(
      service: string,
      options: { discovery?: DiscoveryOptions; extra?: Record<string, unknown>; retry?: RetryOptions | false } = {},
    ) {
      const logger = new LinesLogger();
      const discovery = await Discovery.create(
        { ...(options.discovery ?? backend.options()), ...options.extra },
        { logger, retry: options.retry ?? RETRIES_ON },
      );
      const client: ServiceClient = discovery.client(service);
      const sets = new EndpointRecorder(client.endpoints$);
      // The registry's own view, before the client's health overlay (outlier ejection) filters it.
      const registryView = new EndpointRecorder(discovery.registry.watch(discovery.queryFor({ name: service })));
      cleanups.push(async () => {
        sets.stop();
        registryView.stop();
        await discovery.close();
      });
      return { discovery, client, sets, registryView, logger };
    }

    /** A load of `ratePerSecond` SayHello calls through `client`, stopped at cleanup if the test did not. */
    function startLoad(client: ServiceClient, ratePerSecond: number): LoadGenerator {
      const load = new LoadGenerator(() => helloThrough(client), { ratePerSecond }).start();
      cleanups.push(() => load.stop());
      return load;
    }

    /** Runs a scenario, or records why it does not apply to this backend. */
    function scenario(
      row: (typeof SCENARIOS)[keyof typeof SCENARIOS],
      body: (details: Record<string, unknown>) => Promise<void>,
      notApplicable?: string,
      knownBug?: string,
    ): void {
      if (notApplicable) {
        results.notApplicable(spec(row), notApplicable);
        return;
      }
      reliabilityTest(results, spec(row), body, { timeout: 90_000, knownBug });
    }

    scenario(SCENARIOS.downAtStart, async (details) => {
      const service = freshService('down');
      let instances: ServiceProcess[] = [];
      // DNS records are configuration: publish them, then take the server away.
      if (!backend.registers) instances = await startInstances(service, 2);
      await stopRegistry();
      // Registering instances start meanwhile (their registration retries); the local folder cannot be registered in until it is back.
      if (backend.registers && backend.name !== 'local')
        instances = await startInstances(service, 2, { waitForRegistration: false });
      const { client, sets, logger } = await openClient(service);
      await waitFor(() => sets.latest(), { timeoutMs: 15_000, what: 'a first set while the registry is down' });
      expect(sets.latest()).toMatchObject({ state: 'stale', resolved: false, size: 0 });
      expect(() => client.pick()).toThrow(NoEndpointsError);
      expect(() => client.pick()).toThrow(/unreachable/);
      expect(logger.lines.some((l) => l.startsWith('warn') && /stale/.test(l))).toBe(true);

      const upAt = Date.now();
      await startRegistry();
      if (backend.name === 'local') instances = await startInstances(service, 2);
      await waitFor(() => sets.settledOn(instances.map((i) => i.address)), {
        timeoutMs: 40_000,
        what: 'the client converged on every instance',
      });
      details.convergedAfterMs = Date.now() - upAt;
      for (let i = 0; i < 20; i++) await helloThrough(client);
      expect(sets.errored).toBeUndefined();
      expect(sets.completed).toBe(false);
      expect(instances.every((i) => i.running)).toBe(true);
      details.emissions = sets.emissions.map((e) => `${e.state}:${e.size}`);
    });

    scenario(
      SCENARIOS.restartUnderLoad,
      async (details) => {
        const service = freshService('restart');
        const instances = await startInstances(service, 3);
        const addresses = instances.map((i) => i.address);
        const { client, sets } = await openClient(service);
        await client.ready({ minEndpoints: 3, timeoutMs: 15_000 });
        const load = startLoad(client, 300);
        await load.flowing(150);
        const restartAt = Date.now();
        await backend.restartRegistry();
        details.restartMs = Date.now() - restartAt;
        // Restored: a client that starts now, knowing nothing, finds every instance in the registry.
        const fresh = await openClient(service);
        await fresh.client.ready({ minEndpoints: 3, timeoutMs: 30_000 });
        await waitFor(() => sets.settledOn(addresses), {
          timeoutMs: 30_000,
          what: 'the loaded client is back on every instance',
        });
        await load.flowing(300);
        await load.stop();
        const summary = load.summary();
        Object.assign(details, summary);
        const during = sets.since(restartAt);
        details.staleSets = during.filter((e) => e.state === 'stale').length;
        details.emptySets = during.filter((e) => e.state === 'empty').length;
        expect(summary.failed, summary.firstErrors.join('; ')).toBe(0);
        for (const e of during.filter((x) => x.state === 'stale')) expect(e.addresses).toEqual([...addresses].sort());
        expect(fresh.sets.latest()?.addresses).toEqual([...addresses].sort());
      },
      backend.name === 'local'
        ? 'no registry process: the folder is the registry (see "registry down at client start")'
        : undefined,
    );

    scenario(
      SCENARIOS.stallBeyondTtl,
      async (details) => {
        const service = freshService('stall');
        const instances = await startInstances(service, 3);
        const addresses = instances.map((i) => i.address);
        const { client, sets } = await openClient(service);
        await client.ready({ minEndpoints: 3, timeoutMs: 15_000 });
        const load = startLoad(client, 100);
        await load.flowing(50);
        const stallAt = Date.now();
        stalled = true;
        backend.stallRegistry();
        await waitFor(() => sets.latest()?.state === 'stale', {
          timeoutMs: 20_000,
          what: 'the client noticed the stall',
        });
        details.staleAfterMs = Date.now() - stallAt;
        // Past the TTL: leases, TTL checks and cached answers have all run out meanwhile.
        await holdFault(Math.max(0, stallAt + TTL_MS + 1_500 - Date.now()));
        backend.resumeRegistry();
        stalled = false;
        const resumeAt = Date.now();
        await waitFor(() => sets.since(resumeAt).some((e) => e.state === 'ok') && sets.settledOn(addresses), {
          timeoutMs: 30_000,
          what: 'recovered after SIGCONT',
        });
        details.recoveredAfterMs = Date.now() - resumeAt;
        const fresh = await openClient(service);
        await fresh.client.ready({ minEndpoints: 3, timeoutMs: 30_000 });
        await load.flowing(100);
        await load.stop();
        const summary = load.summary();
        Object.assign(details, summary);
        for (const e of [...sets.since(resumeAt), fresh.sets.latest()!]) {
          expect(new Set(e.ids).size).toBe(e.ids.length);
          expect(new Set(e.addresses).size).toBe(e.addresses.length);
        }
        expect(fresh.sets.latest()?.addresses).toEqual([...addresses].sort());
        expect(summary.failed, summary.firstErrors.join('; ')).toBe(0);
      },
      backend.name === 'local'
        ? 'no registry process to stall: the folder is the registry'
        : backend.name === 'mesh'
          ? 'the test xDS control plane runs inside the test process: it cannot be SIGSTOPped (stop/start is covered)'
          : undefined,
    );

    scenario(SCENARIOS.rollingRestart, async (details) => {
      const service = freshService('rolling');
      const originals = await startInstances(service, 3, { drainMs: 300 });
      let current = [...originals];
      const { client, registryView } = await openClient(service);
      await client.ready({ minEndpoints: 3, timeoutMs: 15_000 });
      const load = startLoad(client, 500);
      await load.flowing(150);
      const restartedAt: Record<string, number> = {};
      for (const instance of originals) {
        if (backend.registers) {
          await instance.stop();
          // Deregistration comes before the server stops: by the time the process exited, the registry no longer lists it.
          expect(registryView.latest()?.addresses).not.toContain(instance.address);
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
          cleanups.push(() => replacement.kill());
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
      await waitFor(
        () =>
          originals.every((i) => load.records.some((r) => r.ok && r.instance === i.id && r.start > restartedAt[i.id])),
        { timeoutMs: 15_000, what: 'every restarted instance serving' },
      );
      await load.stop();
      const summary = load.summary();
      Object.assign(details, summary);
      details.servedAfterRestart = Object.fromEntries(
        originals.map((i) => [
          i.id,
          load.records.filter((r) => r.ok && r.instance === i.id && r.start > restartedAt[i.id]).length,
        ]),
      );
      expect(summary.failed, summary.firstErrors.join('; ')).toBe(0);
    });

    scenario(
      SCENARIOS.restartSameAddress,
      async (details) => {
        const service = freshService('same-address');
        const [instance] = await startInstances(service, 1);
        const { client } = await openClient(service, { retry: false });
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
          // Down for 10 s: gRPC's own backoff (1 s x 1.6^n) would by then wait 6.5 s between attempts;
          // switchyard caps it at 1 s for endpoints the registry still lists.
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
        expect(attempts.length).toBeGreaterThanOrEqual(5);
        expect(Math.max(0, ...gaps())).toBeLessThan(2_000);
        details.reconnectAttempts = attempts.length;
        await instance.start();
        const backAt = Date.now();
        // The instance serves again on its listed address: a call now (with 1.5 s of grace) must reach it.
        const answered = await waitFor(
          () =>
            helloThrough(client, 500).then(
              () => true,
              () => false,
            ),
          { timeoutMs: 1_500, intervalMs: 100, what: 'a call to the restarted instance' },
        ).catch((e: Error) => e);
        details.restartedAfterMs = backAt - attempts.at(-1)!;
        expect(answered).toBe(true);
      },
      backend.registers
        ? 'registering backends list a restarted instance anew, and a new endpoint gets a fresh channel (see the rolling restart)'
        : undefined,
    );

    scenario(SCENARIOS.sigkillInstance, async (details) => {
      const service = freshService('sigkill');
      const instances = await startInstances(service, 3);
      const victim = instances[0];
      const withRetries = await openClient(service);
      const withoutRetries = await openClient(service, { retry: false });
      await withRetries.client.ready({ minEndpoints: 3, timeoutMs: 15_000 });
      await withoutRetries.client.ready({ minEndpoints: 3, timeoutMs: 15_000 });
      // "Leaves within the TTL" is about the registry's view, before the client's own outlier ejection.
      const registryView = withRetries.registryView;
      const retried = startLoad(withRetries.client, 200);
      const plain = startLoad(withoutRetries.client, 200);
      await retried.flowing(100);
      await plain.flowing(100);
      const killAt = Date.now();
      await victim.kill();
      let leftAt = Number.POSITIVE_INFINITY;
      if (backend.registers) {
        const left = () =>
          registryView.since(killAt).find((e) => e.state !== 'stale' && !e.addresses.includes(victim.address));
        await waitFor(left, { timeoutMs: TTL_MS + 15_000, what: 'the killed instance leaves the registry' });
        leftAt = left()!.at;
        details.leftRegistryAfterMs = leftAt - killAt;
      }
      const unlisted = withRetries.sets.since(killAt).find((e) => !e.addresses.includes(victim.address));
      if (unlisted) details.leftClientSetAfterMs = unlisted.at - killAt;
      await retried.flowing(200);
      await plain.flowing(200);
      await Promise.all([retried.stop(), plain.stop()]);
      const summary = retried.summary();
      Object.assign(details, summary);
      details.withoutRetries = { calls: plain.records.length, failed: plain.failures.length };
      expect(summary.failed, summary.firstErrors.join('; ')).toBe(0);
      if (backend.registers) {
        expect(leftAt - killAt).toBeLessThanOrEqual(TTL_MS + LEAVE_SLACK_MS);
        // Without retries, calls fail only while the dead instance is still listed (and those already in flight then).
        for (const failure of plain.failures) {
          expect(failure.start).toBeGreaterThanOrEqual(killAt - 100);
          expect(failure.start).toBeLessThanOrEqual(leftAt + 1_000);
        }
      }
    });

    const healthLayer = healthLayerPresent();

    if (!healthLayer)
      results.notApplicable(spec(SCENARIOS.flapping), 'not yet (health layer): needs outlier ejection', 'not-yet');
    else
      scenario(SCENARIOS.flapping, async (details) => {
        const service = freshService('flapping');
        const instances = await startInstances(service, 3, { drainMs: 100 });
        const flapper = instances[0];
        const { client, sets, registryView } = await openClient(service);
        await client.ready({ minEndpoints: 3, timeoutMs: 15_000 });
        const load = startLoad(client, 200);
        await load.flowing(100);
        const flapFrom = Date.now();
        for (let cycle = 0; cycle < FLAP_CYCLES; cycle++) {
          // Down for 2 s, up for 2 s. Registering instances leave and rejoin the registry (SIGTERM: deregister first);
          // a DNS / xDS address stays listed while its process is gone (SIGKILL), as with a crash-looping pod.
          if (backend.registers) await flapper.stop();
          else await flapper.kill();
          await holdFault(2_000);
          await flapper.start();
          await holdFault(2_000);
        }
        await load.flowing(200);
        await load.stop();
        const summary = load.summary();
        const clientChanges = sets.since(flapFrom).length;
        const registryChanges = registryView.since(flapFrom).length;
        Object.assign(details, summary, { clientSetChanges: clientChanges, registrySetChanges: registryChanges });
        expect(summary.failed, summary.firstErrors.join('; ')).toBe(0);
        expect(clientChanges).toBeLessThanOrEqual(registryChanges + 2);
      });

    if (!healthLayer)
      results.notApplicable(
        spec(SCENARIOS.allUnhealthy),
        'not yet (health layer): needs active checks and the panic threshold',
        'not-yet',
      );
    else
      scenario(SCENARIOS.allUnhealthy, async (details) => {
        const service = freshService('unhealthy');
        const instances = await startInstances(service, 3);
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
        const panicking = await openClient(service, { extra: checks });
        const failFast = await openClient(service, { extra: { ...checks, panicThreshold: 0 } });
        const events: Array<{ type: string; active?: boolean }> = [];
        const subscription = (panicking.client as unknown as HealthAware).events$?.subscribe((e) => events.push(e));
        cleanups.push(() => subscription?.unsubscribe());
        await panicking.client.ready({ minEndpoints: 3, timeoutMs: 15_000 });
        await failFast.client.ready({ minEndpoints: 3, timeoutMs: 15_000 });
        const load = startLoad(panicking.client, 100);
        await load.flowing(50);

        for (const i of instances) i.signal('SIGUSR1');
        await waitFor(() => (panicking.client as unknown as HealthAware).healthStatus?.panic, {
          timeoutMs: 15_000,
          what: 'panic mode',
        });
        // Fail fast: nothing healthy and no panic mode, so nothing is served, and pick() says why.
        await waitFor(() => failFast.client.snapshot().size === 0, {
          timeoutMs: 15_000,
          what: 'the fail-fast client serving nothing',
        });
        expect(failFast.client.snapshot().state).toBe('ok');
        expect(() => failFast.client.pick()).toThrow(/every known instance was filtered out or is unhealthy/);
        await load.flowing(100);
        expect(panicking.client.snapshot().size).toBe(3);
        expect(events.some((e) => e.type === 'panic' && e.active === true)).toBe(true);
        expect(panicking.logger.lines.filter((l) => l.startsWith('warn') && /panic threshold/.test(l))).toHaveLength(1);

        for (const i of instances) i.signal('SIGUSR2');
        await waitFor(() => (panicking.client as unknown as HealthAware).healthStatus?.panic === false, {
          timeoutMs: 15_000,
          what: 'panic mode over',
        });
        await waitFor(() => failFast.client.snapshot().size === 3, {
          timeoutMs: 15_000,
          what: 'the fail-fast client serving again',
        });
        await load.flowing(50);
        await load.stop();
        const summary = load.summary();
        Object.assign(details, summary, { panicEvents: events.filter((e) => e.type === 'panic').length });
        expect(summary.failed, summary.firstErrors.join('; ')).toBe(0);
        expect(events.some((e) => e.type === 'panic' && e.active === false)).toBe(true);
      });

    scenario(SCENARIOS.emptyVsUnreachable, async (details) => {
      const nobody = freshService('nobody');
      // xDS: the cluster exists with no endpoints (an absent cluster is only declared absent after the 15 s resource timeout).
      if (backend.name === 'mesh') await backend.publish(nobody, []);
      const empty = await openClient(nobody);
      await waitFor(() => empty.sets.latest()?.resolved, {
        timeoutMs: 15_000,
        what: 'an answer for a service with zero instances',
      });
      expect(empty.sets.latest()).toMatchObject({ state: 'empty', resolved: true, size: 0 });
      expect(() => empty.client.pick()).toThrow(/the registry reports zero instances/);
      await expect(empty.client.ready({ timeoutMs: 50 })).rejects.toMatchObject({ reason: 'empty' });

      const down = await openClient(freshService('nobody'), { discovery: await backend.unreachableOptions() });
      await waitFor(() => down.sets.latest(), {
        timeoutMs: 15_000,
        what: 'a first set from a registry that does not answer',
      });
      expect(down.sets.latest()).toMatchObject({ state: 'stale', resolved: false, size: 0 });
      expect(down.sets.latest()!.reason).toBeTruthy();
      expect(() => down.client.pick()).toThrow(/the registry is unreachable/);
      await expect(down.client.ready({ timeoutMs: 50 })).rejects.toMatchObject({ reason: 'unreachable' });
      expect(down.logger.lines.some((l) => l.startsWith('warn') && /stale/.test(l))).toBe(true);
      expect(empty.logger.lines.some((l) => l.startsWith('warn') && /stale/.test(l))).toBe(false);
      details.unreachableReason = down.sets.latest()!.reason;
      if (!healthLayer) {
        details.healthAndMetrics = 'not yet (health layer)';
        return;
      }
      // The health report (what the Terminus indicator shows) and the Prometheus metrics tell the two apart too.
      const emptyService = empty.client.service;
      const downService = down.client.service;
      const report = (d: Discovery) => (d as unknown as { healthReport(): HealthReport }).healthReport();
      expect(report(empty.discovery).dependencies[emptyService]).toMatchObject({
        state: 'empty',
        reason: 'the registry reports zero instances',
      });
      expect(report(empty.discovery).registry.reachable).not.toBe(false);
      expect(report(down.discovery).dependencies[downService]).toMatchObject({ state: 'stale', status: 'down' });
      expect(report(down.discovery).registry.reachable).toBe(false);
      const metricsText = async (d: Discovery) => {
        const prom = await import('prom-client');
        const register = new prom.Registry();
        (d as unknown as { enableMetrics(options: { register: unknown }): unknown }).enableMetrics({ register });
        return register.metrics();
      };
      const emptyMetrics = await metricsText(empty.discovery);
      const downMetrics = await metricsText(down.discovery);
      expect(downMetrics).toContain(`switchyard_endpoint_set_stale{service="${downService}"} 1`);
      expect(emptyMetrics).not.toContain(`switchyard_endpoint_set_stale{service="${emptyService}"} 1`);
      details.healthReport = {
        empty: report(empty.discovery).dependencies[emptyService]?.reason,
        unreachable: report(down.discovery).dependencies[downService]?.reason,
      };
    });
  });
}

export { NotApplicable };
