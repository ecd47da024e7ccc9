import { Subject } from 'rxjs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createServiceInstance, EndpointSet, type DiscoveryEvent } from '../../../lib/index.js';
import { HealthOverlay, type CheckerSource } from '../../../lib/health/health-overlay.js';
import { type EndpointHealthChecker, type HealthCheckResult } from '../../../lib/health/endpoint-health-checker.js';
import { type HealthSettings } from '../../../lib/health/health-settings.js';

const SETTINGS: HealthSettings = {
  active: {
    enabled: true,
    kind: 'grpc',
    service: '',
    path: '/health',
    intervalMs: 1_000,
    timeoutMs: 500,
    failureThreshold: 3,
    successThreshold: 2,
    jitter: 0.1,
  },
  outlier: {
    enabled: true,
    consecutiveFailures: 2,
    baseEjectionMs: 60_000,
    maxEjectionMs: 600_000,
    maxEjectionPercent: 50,
  },
  panicThreshold: 50,
};

/** Checkers whose verdict the test sets (the real ones are exercised against servers in test/integration/health). */
class ScriptedCheckers implements CheckerSource {
  readonly checkers = new Map<string, { healthy: boolean; results: Subject<HealthCheckResult>; refs: number }>();

  acquire(endpoint: { address: string }): EndpointHealthChecker {
    let entry = this.checkers.get(endpoint.address);
    if (!entry) this.checkers.set(endpoint.address, (entry = { healthy: true, results: new Subject(), refs: 0 }));
    entry.refs++;
    const e = entry;
    return {
      address: endpoint.address,
      get healthy() {
        return e.healthy;
      },
      results$: e.results.asObservable(),
    } as unknown as EndpointHealthChecker;
  }

  release(checker: EndpointHealthChecker): void {
    const entry = this.checkers.get(checker.address)!;
    if (--entry.refs === 0) this.checkers.delete(checker.address);
  }

  set(address: string, healthy: boolean): void {
    const entry = this.checkers.get(address)!;
    entry.healthy = healthy;
    entry.results.next({
      address,
      kind: 'grpc',
      target: '',
      ok: healthy,
      healthy,
      changed: true,
      detail: healthy ? undefined : 'NOT_SERVING',
      consecutiveFailures: healthy ? 0 : 3,
      consecutiveSuccesses: healthy ? 2 : 0,
      durationMs: 1,
      at: Date.now(),
    });
  }
}

function instances(...ports: number[]) {
  return ports.map((port) => createServiceInstance({ service: 'svc', id: `i${port}`, address: `127.0.0.1:${port}` }));
}

function overlay(settings: Partial<HealthSettings> = {}) {
  const served: EndpointSet[] = [];
  const events: DiscoveryEvent[] = [];
  const checkers = new ScriptedCheckers();
  const lines: string[] = [];
  const o = new HealthOverlay({
    service: 'svc',
    settings: { ...SETTINGS, ...settings },
    checkers,
    logger: { log: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m) },
    serve: (set) => served.push(set),
    emit: (e) => events.push(e),
  });
  return { o, served, events, checkers, lines };
}

const addrs = (set: EndpointSet) => set.endpoints.map((e) => e.port);

describe('HealthOverlay', () => {
  it('serves registry snapshots with their own increasing revisions and emits nothing when nothing served changes', () => {
    const { o, served, checkers } = overlay();
    let raw = EndpointSet.of('svc', instances(1, 2, 3));
    o.update(raw);
    expect(served.map(addrs)).toEqual([[1, 2, 3]]);
    checkers.set('127.0.0.1:2', false);
    expect(served.map(addrs)).toEqual([
      [1, 2, 3],
      [1, 3],
    ]);
    expect(served[1].revision).toBeGreaterThan(served[0].revision);
    expect(served[1].diff.removed.map((e) => e.port)).toEqual([2]);
    // The registry re-sends the same instances: nothing new to serve.
    raw = raw.next(instances(1, 2, 3));
    o.update(raw);
    expect(served).toHaveLength(2);
    // A new instance arrives: healthy until checked otherwise.
    raw = raw.next(instances(1, 2, 3, 4));
    o.update(raw);
    expect(addrs(served.at(-1)!)).toEqual([1, 3, 4]);
    expect(served.at(-1)!.diff.added.map((e) => e.port)).toEqual([4]);
    checkers.set('127.0.0.1:2', true);
    expect(addrs(served.at(-1)!)).toEqual([1, 2, 3, 4]);
    // Departed endpoints release their checkers.
    o.update(raw.next(instances(1)));
    expect([...checkers.checkers.keys()]).toEqual(['127.0.0.1:1']);
    o.close();
    expect(checkers.checkers.size).toBe(0);
  });

  it('keeps the registry state: stale with the last served endpoints, empty for zero instances', () => {
    const { o, served, checkers } = overlay();
    const raw = EndpointSet.of('svc', instances(1, 2, 3));
    o.update(raw);
    checkers.set('127.0.0.1:3', false);
    o.update(raw.stale('registry down'));
    expect(served.at(-1)).toMatchObject({ state: 'stale', reason: 'registry down' });
    expect(addrs(served.at(-1)!)).toEqual([1, 2]);
    const count = served.length;
    o.update(raw.stale('registry down'));
    expect(served).toHaveLength(count);
    o.update(raw.next([]));
    expect(served.at(-1)).toMatchObject({ state: 'empty', size: 0 });
  });

  it('an unresolved stale first answer stays unresolved', () => {
    const { o, served } = overlay();
    o.update(EndpointSet.initial('svc').stale('no registry'));
    expect(served[0]).toMatchObject({ state: 'stale', resolved: false, size: 0, revision: 1 });
  });

  it('panics below the threshold (serving all known endpoints) and reports it once', () => {
    const { o, served, events, checkers, lines } = overlay();
    o.update(EndpointSet.of('svc', instances(1, 2, 3, 4)));
    checkers.set('127.0.0.1:1', false);
    checkers.set('127.0.0.1:2', false);
    // 2 of 4 healthy = 50 %: not below the threshold.
    expect(addrs(served.at(-1)!)).toEqual([3, 4]);
    checkers.set('127.0.0.1:3', false);
    expect(addrs(served.at(-1)!)).toEqual([1, 2, 3, 4]);
    expect(o.status).toEqual({ total: 4, healthy: 1, unhealthy: 3, ejected: 0, served: 4, panic: true });
    checkers.set('127.0.0.1:4', false);
    expect(events.filter((e) => e.type === 'panic')).toHaveLength(1);
    expect(lines.filter((l) => l.includes('panic threshold'))).toHaveLength(1);
    checkers.set('127.0.0.1:1', true);
    checkers.set('127.0.0.1:2', true);
    expect(o.status.panic).toBe(false);
    expect(addrs(served.at(-1)!)).toEqual([1, 2]);
  });

  it('with panic disabled and nothing healthy serves an ok set with no endpoints (not "empty"), under a new revision', () => {
    const { o, served, checkers } = overlay({ panicThreshold: 0 });
    o.update(EndpointSet.of('svc', instances(1, 2)));
    const before = served.at(-1)!.revision;
    checkers.set('127.0.0.1:1', false);
    checkers.set('127.0.0.1:2', false);
    const last = served.at(-1)!;
    expect(last).toMatchObject({ state: 'ok', size: 0, resolved: true });
    expect(last.revision).toBeGreaterThan(before);
    checkers.set('127.0.0.1:2', true);
    expect(addrs(served.at(-1)!)).toEqual([2]);
    expect(served.at(-1)!.revision).toBeGreaterThan(last.revision);
  });

  it('ejects on consecutive transport failures, within the max share, and ignores endpoints it does not know', () => {
    const { o, served, events } = overlay({ active: { ...SETTINGS.active, enabled: false } });
    const raw = EndpointSet.of('svc', instances(1, 2, 3));
    o.update(raw);
    const [e1, e2] = raw.endpoints;
    o.recordOutcome(e1, 'connection-failure');
    o.recordOutcome(e1, 'connection-failure');
    expect(addrs(served.at(-1)!)).toEqual([2, 3]);
    o.recordOutcome(e2, 'connection-failure');
    o.recordOutcome(e2, 'connection-failure');
    // 50 % of 3: one ejection at most.
    expect(addrs(served.at(-1)!)).toEqual([2, 3]);
    expect(events.filter((e) => e.type === 'ejected')).toEqual([
      expect.objectContaining({ address: '127.0.0.1:1', consecutiveFailures: 2, durationMs: 60_000, ejections: 1 }),
    ]);
    const stranger = EndpointSet.of('svc', instances(9)).endpoints[0];
    o.recordOutcome(stranger, 'connection-failure');
    o.recordOutcome(stranger, 'connection-failure');
    expect(o.status.ejected).toBe(1);
    o.close();
  });

  it('passes registry sets through untouched when checks and outlier detection are both off', () => {
    const { o, served } = overlay({
      active: { ...SETTINGS.active, enabled: false },
      outlier: { ...SETTINGS.outlier, enabled: false },
    });
    const raw = EndpointSet.of('svc', instances(1, 2));
    o.update(raw);
    expect(served[0]).toBe(raw);
    o.recordOutcome(raw.endpoints[0], 'connection-failure');
    o.recordOutcome(raw.endpoints[0], 'connection-failure');
    expect(served).toHaveLength(1);
  });

  it('updated from diffs, serves exactly what a from-scratch computation serves, after any sequence of changes', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('add' as const), port: fc.integer({ min: 1, max: 12 }) }),
      fc.record({ kind: fc.constant('remove' as const), port: fc.integer({ min: 1, max: 12 }) }),
      fc.record({ kind: fc.constant('reweigh' as const), port: fc.integer({ min: 1, max: 12 }) }),
      fc.record({ kind: fc.constant('check' as const), port: fc.integer({ min: 1, max: 12 }), ok: fc.boolean() }),
      fc.record({ kind: fc.constant('fail' as const), port: fc.integer({ min: 1, max: 12 }) }),
      fc.record({ kind: fc.constant('stale' as const) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), fc.constantFrom(0, 50), (ops, panicThreshold) => {
        const { o, served, checkers } = overlay({ panicThreshold });
        const live = new Map<number, number>();
        let raw = EndpointSet.initial('svc');
        const instancesNow = () =>
          [...live].map(([port, weight]) =>
            createServiceInstance({ service: 'svc', id: `i${port}`, address: `127.0.0.1:${port}`, weight }),
          );
        for (const step of ops) {
          if (step.kind === 'add') live.set(step.port, live.get(step.port) ?? 1);
          else if (step.kind === 'remove') live.delete(step.port);
          else if (step.kind === 'reweigh' && live.has(step.port)) live.set(step.port, live.get(step.port)! + 1);
          if (step.kind === 'check') {
            if (checkers.checkers.has(`127.0.0.1:${step.port}`)) checkers.set(`127.0.0.1:${step.port}`, step.ok);
          } else if (step.kind === 'fail') {
            const endpoint = raw.endpoints.find((e) => e.port === step.port);
            if (endpoint) for (let i = 0; i < 2; i++) o.recordOutcome(endpoint, 'connection-failure');
          } else {
            raw = step.kind === 'stale' ? raw.stale('down') : raw.next(instancesNow());
            o.update(raw);
          }
          // From scratch: the known endpoints minus those failing checks or ejected, or all in panic.
          const healthy = raw.endpoints.filter((e) => !o.isFailingChecks(e.address) && !o.isEjected(e.key));
          const panic = panicThreshold > 0 && raw.size > 0 && healthy.length * 100 < panicThreshold * raw.size;
          const expected = (panic ? raw.endpoints : healthy).map((e) => `${e.key}:${e.weight}`);
          const last = served.at(-1);
          if (!last) continue;
          expect(last.endpoints.map((e) => `${e.key}:${e.weight}`)).toEqual(expected);
          expect(last.state).toBe(raw.state === 'stale' ? 'stale' : raw.size > 0 ? 'ok' : 'empty');
          expect(o.status).toMatchObject({ total: raw.size, healthy: healthy.length, panic });
        }
        o.close();
      }),
      { numRuns: 300 },
    );
  });
});
