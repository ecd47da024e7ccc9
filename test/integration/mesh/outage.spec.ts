import { afterEach, describe, expect, it } from 'vitest';
import type { MeshRegistry } from '../../../lib/registry/mesh/mesh.registry.js';
import type { ReachabilityState } from '../../../lib/registry/shared/reachability.js';
import { findFreePort } from '../../../lib/core/tcp.js';
import { waitFor } from '../../support/wait-for.js';
import { XdsControlPlane } from '../../support/xds/xds-control-plane.js';
import { CLUSTER_TYPE, edsCluster, ENDPOINT_TYPE, loadAssignment } from '../../support/xds/xds-resources.js';
import { meshRegistry, RecordingLogger, SetRecorder } from './mesh-test-kit.js';

describe('mesh backend when the control plane goes away', () => {
  const closers: Array<() => Promise<void> | void> = [];

  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  async function plane(port?: number): Promise<XdsControlPlane> {
    const p = await XdsControlPlane.start(port ? { port } : {});
    closers.push(() => p.close());
    return p;
  }

  async function registry(xdsServer: string, logger = new RecordingLogger()): Promise<MeshRegistry> {
    const r = await meshRegistry({ xdsServer, nodeId: 'outage-test' }, { logger });
    closers.push(() => r.close());
    return r;
  }

  function watch(r: MeshRegistry, service: string): SetRecorder {
    const recorder = new SetRecorder(r.watch({ service }));
    closers.push(() => recorder.unsubscribe());
    return recorder;
  }

  it('serves the last known set as stale while the control plane restarts, then re-subscribes on a new stream', async () => {
    const cp = await plane();
    cp.set(CLUSTER_TYPE, edsCluster('orders'));
    cp.set(
      ENDPOINT_TYPE,
      loadAssignment('orders', [
        { region: 'eu', endpoints: [{ address: '127.0.0.1:8101' }, { address: '127.0.0.1:8102' }] },
      ]),
    );
    const logger = new RecordingLogger();
    const mesh = await registry(cp.url, logger);
    const states: ReachabilityState[] = [];
    const stateSubscription = mesh.reachability.state$.subscribe((s) => states.push(s));
    closers.push(() => stateSubscription.unsubscribe());
    const orders = watch(mesh, 'orders');
    await waitFor(() => orders.latest?.state === 'ok', { what: 'the first set' });
    const streamsBefore = cp.requests.at(-1)!.stream;

    await cp.stop();
    const stale = await waitFor(() => orders.find((s) => s.state === 'stale'), { what: 'the stale set' });
    // Same endpoints, marked stale with a reason that says the registry is unreachable.
    expect(stale.set.endpoints.map((e) => e.address)).toEqual(['127.0.0.1:8101', '127.0.0.1:8102']);
    expect(stale.set.reason).toMatch(/^registry unreachable: xDS control plane at http:\/\/127\.0\.0\.1:\d+/);
    expect(mesh.reachability.current).toMatchObject({ reachable: false, reason: stale.set.reason });
    expect(logger.warnings().some((w) => w.includes('registry unreachable'))).toBe(true);

    // While down the control plane changes (as after a rollout); the restarted one serves the new state.
    cp.set(
      ENDPOINT_TYPE,
      loadAssignment('orders', [
        { region: 'eu', endpoints: [{ address: '127.0.0.1:8102' }, { address: '127.0.0.1:8103' }] },
      ]),
    );
    await cp.start();
    const back = await waitFor(() => orders.find((s) => s.state === 'ok', orders.sets.indexOf(stale.set)), {
      timeoutMs: 15_000,
      what: 'the set after the restart',
    });
    expect(back.set.endpoints.map((e) => e.address)).toEqual(['127.0.0.1:8102', '127.0.0.1:8103']);
    expect(mesh.reachability.current.reachable).toBe(true);
    // Reachable until a request fails (the contract's start), unreachable during the restart, reachable again.
    expect(states.map((s) => s.reachable)).toEqual([true, false, true]);

    // The new stream subscribed both resources again, and they were ACKed.
    const resubscribed = cp.requests.filter((r) => r.stream > streamsBefore);
    expect(resubscribed.filter((r) => r.kind === 'subscribe').map((r) => [r.typeUrl, r.resourceNames])).toEqual([
      [CLUSTER_TYPE, ['orders']],
      [ENDPOINT_TYPE, ['orders']],
    ]);
    expect(resubscribed[0].nodeId).toBe('outage-test');
    await waitFor(() => cp.settled(CLUSTER_TYPE) && cp.settled(ENDPOINT_TYPE), { what: 'the new stream ACKing' });
    // Exactly one stale emission in between, and nothing emitted twice.
    expect(orders.sets.filter((s) => s.state === 'stale')).toHaveLength(1);

    // Updates flow again.
    cp.set(ENDPOINT_TYPE, loadAssignment('orders', [{ region: 'eu', endpoints: [{ address: '127.0.0.1:8104' }] }]));
    await waitFor(() => orders.addresses().join() === '127.0.0.1:8104', { what: 'an update after the restart' });
  });

  it('answers stale (no endpoints, unresolved) when the control plane is unreachable at start, and serves once it comes up', async () => {
    const port = await findFreePort();
    const mesh = await registry(`http://127.0.0.1:${port}`);
    const early = watch(mesh, 'late');
    const first = await waitFor(() => early.latest, { what: 'the first emission' });
    expect(first.state).toBe('stale');
    expect(first.resolved).toBe(false);
    expect(first.size).toBe(0);
    expect(first.reason).toMatch(/registry unreachable/);

    // A second watch during the outage hears the same at once.
    const second = watch(mesh, 'late');
    expect(second.latest?.state).toBe('stale');

    const cp = await plane(port);
    cp.set(CLUSTER_TYPE, edsCluster('late'));
    cp.set(ENDPOINT_TYPE, loadAssignment('late', [{ region: 'eu', endpoints: [{ address: '127.0.0.1:8201' }] }]));
    await waitFor(() => early.latest?.state === 'ok' && second.latest?.state === 'ok', {
      timeoutMs: 15_000,
      what: 'both watches served after start-up',
    });
    expect(early.addresses()).toEqual(['127.0.0.1:8201']);
    expect(cp.openStreams).toBe(1);
  });

  it('reports reachability with no watch open: probe() connects to the control plane, or says why it cannot', async () => {
    const cp = await plane();
    const mesh = await registry(cp.url);
    expect(await mesh.reachability.probe()).toMatchObject({ reachable: true, reason: undefined });
    expect(cp.openStreams).toBe(0);

    const port = await findFreePort();
    const down = await meshRegistry({ xdsServer: `http://127.0.0.1:${port}` }, { tuning: { probeTimeoutMs: 300 } });
    closers.push(() => down.close());
    const state = await down.reachability.probe();
    expect(state.reachable).toBe(false);
    expect(state.reason).toMatch(
      /^registry unreachable: xDS control plane at http:\/\/127\.0\.0\.1:\d+ \(not connected within 300 ms\)/,
    );
  });

  it('close() completes the watches and ends the ADS stream', async () => {
    const cp = await plane();
    cp.set(CLUSTER_TYPE, edsCluster('closing'));
    cp.set(ENDPOINT_TYPE, loadAssignment('closing', [{ region: 'eu', endpoints: [{ address: '127.0.0.1:8301' }] }]));
    const mesh = await meshRegistry({ xdsServer: cp.url });
    const closing = new SetRecorder(mesh.watch({ service: 'closing' }));
    await waitFor(() => closing.latest?.state === 'ok', { what: 'the first set' });
    expect(cp.openStreams).toBe(1);
    await mesh.close();
    expect(closing.completed).toBe(true);
    await waitFor(() => cp.openStreams === 0, { what: 'the stream ending' });
    // A closed registry completes new watches at once.
    const after = new SetRecorder(mesh.watch({ service: 'closing' }));
    expect(after.completed).toBe(true);
    expect(after.sets).toEqual([]);
  });
});
