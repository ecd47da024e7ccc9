import prom from 'prom-client';
import { expect } from 'vitest';
import { NoEndpointsError, type Discovery } from '../../../lib/index.js';
import { waitFor } from '../../support/wait-for.js';
import { FAULT_TTL_S } from './fault-backends.js';
import { expectLoadHeld, MAX_SKIPPED_SHARE } from './fault-context.js';
import { helloThrough, holdFault } from './fault-harness.js';
import type { ServiceProcess } from './service-process.js';
import type { FaultScenario } from './fault-scenarios.js';

/*
 * Faults of the registry itself: down at start, restarted, stalled past the
 * TTL, and a registry that answers "nobody" versus one that does not answer.
 */
const TTL_MS = FAULT_TTL_S * 1000;
const skippedAtMost = `at most ${MAX_SKIPPED_SHARE * 100} % of the calls due in the fault window skipped by the load generator`;

const downAtStart: FaultScenario = {
  scenario: 'down-at-start',
  title: 'registry down at client start, then up',
  asserted: () =>
    'the client starts without error (first set stale and unresolved, pick() says unreachable, a "stale" warning) and converges to every instance once the registry is up; 20 calls then succeed; endpoints$ never errored or completed',
  async run(ctx, details) {
    const { backend } = ctx;
    const service = ctx.freshService('down');
    let instances: ServiceProcess[] = [];
    // DNS records are configuration: publish them, then take the server away.
    if (!backend.registers) instances = await ctx.startInstances(service, 2);
    await ctx.stopRegistry();
    // Registering instances start meanwhile (their registration retries); the local folder cannot be registered in until it is back.
    if (backend.registers && backend.name !== 'local')
      instances = await ctx.startInstances(service, 2, { waitForRegistration: false });
    const { client, sets, logger } = await ctx.openClient(service);
    await waitFor(() => sets.latest(), { timeoutMs: 15_000, what: 'a first set while the registry is down' });
    expect(sets.latest()).toMatchObject({ state: 'stale', resolved: false, size: 0 });
    expect(() => client.pick()).toThrow(NoEndpointsError);
    expect(() => client.pick()).toThrow(/unreachable/);
    expect(logger.warned(/stale/)).toBe(true);

    const upAt = Date.now();
    await ctx.startRegistry();
    if (backend.name === 'local') instances = await ctx.startInstances(service, 2);
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
  },
};

const restartUnderLoad: FaultScenario = {
  scenario: 'restart-under-load',
  title: 'registry restarted under load',
  asserted: ({ registers }) =>
    `at 300 calls/s while the registry restarts: zero failed calls, ${skippedAtMost} (restart until the client is back on every instance); every stale set keeps all endpoints (last known good); ${registers ? 'every registration is restored: a client started after the restart finds every instance' : 'a client started after the restart finds every instance (the records / resources are served again)'}`,
  notApplicable: ({ name }) =>
    name === 'local'
      ? 'no registry process: the folder is the registry (see "registry down at client start")'
      : undefined,
  async run(ctx, details) {
    const service = ctx.freshService('restart');
    const instances = await ctx.startInstances(service, 3);
    const addresses = instances.map((i) => i.address);
    const { client, sets } = await ctx.openClient(service);
    await client.ready({ minEndpoints: 3, timeoutMs: 15_000 });
    const load = ctx.startLoad(client, 300);
    await load.flowing(150);
    const restartAt = Date.now();
    await ctx.backend.restartRegistry();
    details.restartMs = Date.now() - restartAt;
    // Restored: a client that starts now, knowing nothing, finds every instance in the registry.
    const fresh = await ctx.openClient(service);
    await fresh.client.ready({ minEndpoints: 3, timeoutMs: 30_000 });
    await waitFor(() => sets.settledOn(addresses), {
      timeoutMs: 30_000,
      what: 'the loaded client is back on every instance',
    });
    const recoveredAt = Date.now();
    await load.flowing(300);
    await load.stop();
    const summary = load.summary();
    Object.assign(details, summary);
    const during = sets.since(restartAt);
    details.staleSets = during.filter((e) => e.state === 'stale').length;
    details.emptySets = during.filter((e) => e.state === 'empty').length;
    expect(summary.failed, summary.firstErrors.join('; ')).toBe(0);
    expectLoadHeld(load, details, restartAt, recoveredAt);
    for (const e of during.filter((x) => x.state === 'stale')) expect(e.addresses).toEqual([...addresses].sort());
    expect(fresh.sets.latest()?.addresses).toEqual([...addresses].sort());
  },
};

const stallBeyondTtl: FaultScenario = {
  scenario: 'stall-beyond-ttl',
  title: 'registry stalled (SIGSTOP) beyond the TTL',
  asserted: () =>
    `at 100 calls/s the client goes stale but keeps serving: zero failed calls, ${skippedAtMost} (stall until recovery); the stall lasts the TTL (2 s) plus 1.5 s; after SIGCONT the client recovers to exactly the instances, no duplicate ids or addresses, and a client started afterwards sees each instance once`,
  notApplicable: ({ name }) =>
    name === 'local'
      ? 'no registry process to stall: the folder is the registry'
      : name === 'mesh'
        ? 'the test xDS control plane runs inside the test process: it cannot be SIGSTOPped (stop/start is covered)'
        : undefined,
  async run(ctx, details) {
    const service = ctx.freshService('stall');
    const instances = await ctx.startInstances(service, 3);
    const addresses = instances.map((i) => i.address);
    const { client, sets } = await ctx.openClient(service);
    await client.ready({ minEndpoints: 3, timeoutMs: 15_000 });
    const load = ctx.startLoad(client, 100);
    await load.flowing(50);
    const stallAt = Date.now();
    ctx.stallRegistry();
    await waitFor(() => sets.latest()?.state === 'stale', { timeoutMs: 20_000, what: 'the client noticed the stall' });
    details.staleAfterMs = Date.now() - stallAt;
    // Past the TTL: leases, TTL checks and cached answers have all run out meanwhile.
    await holdFault(Math.max(0, stallAt + TTL_MS + 1_500 - Date.now()));
    ctx.resumeRegistry();
    const resumeAt = Date.now();
    await waitFor(() => sets.since(resumeAt).some((e) => e.state === 'ok') && sets.settledOn(addresses), {
      timeoutMs: 30_000,
      what: 'recovered after SIGCONT',
    });
    const recoveredAt = Date.now();
    details.recoveredAfterMs = recoveredAt - resumeAt;
    const fresh = await ctx.openClient(service);
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
    expectLoadHeld(load, details, stallAt, recoveredAt);
  },
};

/** The Prometheus text of `discovery`'s metrics, in a registry of their own. */
async function metricsText(discovery: Discovery): Promise<string> {
  const register = new prom.Registry();
  discovery.enableMetrics({ register });
  return register.metrics();
}

const emptyVsUnreachable: FaultScenario = {
  scenario: 'empty-vs-unreachable',
  title: 'empty versus unreachable registry',
  asserted: () =>
    'zero instances gives state "empty", NoEndpointsError reason "empty" and no warning; a registry that does not answer gives "stale" (unresolved), reason "unreachable" and a "stale" warning; the health report (dependency state empty vs stale, registry reachable vs not) and the switchyard_endpoint_set_stale metric (0 vs 1) tell them apart too',
  async run(ctx, details) {
    const nobody = ctx.freshService('nobody');
    // xDS: the cluster exists with no endpoints (an absent cluster is only declared absent after the 15 s resource timeout).
    if (ctx.backend.name === 'mesh') await ctx.backend.publish(nobody, []);
    const empty = await ctx.openClient(nobody);
    await waitFor(() => empty.sets.latest()?.resolved, {
      timeoutMs: 15_000,
      what: 'an answer for a service with zero instances',
    });
    expect(empty.sets.latest()).toMatchObject({ state: 'empty', resolved: true, size: 0 });
    expect(() => empty.client.pick()).toThrow(/the registry reports zero instances/);
    await expect(empty.client.ready({ timeoutMs: 50 })).rejects.toMatchObject({ reason: 'empty' });

    const down = await ctx.openClient(ctx.freshService('nobody'), {
      discovery: await ctx.backend.unreachableOptions(),
    });
    await waitFor(() => down.sets.latest(), {
      timeoutMs: 15_000,
      what: 'a first set from a registry that does not answer',
    });
    expect(down.sets.latest()).toMatchObject({ state: 'stale', resolved: false, size: 0 });
    expect(down.sets.latest()!.reason).toBeTruthy();
    expect(() => down.client.pick()).toThrow(/the registry is unreachable/);
    await expect(down.client.ready({ timeoutMs: 50 })).rejects.toMatchObject({ reason: 'unreachable' });
    expect(down.logger.warned(/stale/)).toBe(true);
    expect(empty.logger.warned(/stale/)).toBe(false);
    details.unreachableReason = down.sets.latest()!.reason;

    // The health report (what the Terminus indicator shows) and the Prometheus metrics tell the two apart too.
    const emptyReport = empty.discovery.healthReport();
    const downReport = down.discovery.healthReport();
    expect(emptyReport.dependencies[empty.client.service]).toMatchObject({
      state: 'empty',
      reason: 'the registry reports zero instances',
    });
    expect(emptyReport.registry.reachable).not.toBe(false);
    expect(downReport.dependencies[down.client.service]).toMatchObject({ state: 'stale', status: 'down' });
    expect(downReport.registry.reachable).toBe(false);
    const emptyMetrics = await metricsText(empty.discovery);
    const downMetrics = await metricsText(down.discovery);
    expect(downMetrics).toContain(`switchyard_endpoint_set_stale{service="${down.client.service}"} 1`);
    expect(emptyMetrics).toContain(`switchyard_endpoint_set_stale{service="${empty.client.service}"} 0`);
    details.healthReport = {
      empty: emptyReport.dependencies[empty.client.service]?.reason,
      unreachable: downReport.dependencies[down.client.service]?.reason,
    };
  },
};

export const REGISTRY_FAULTS: readonly FaultScenario[] = [
  downAtStart,
  restartUnderLoad,
  stallBeyondTtl,
  emptyVsUnreachable,
];
