import { describe, expect, it } from 'vitest';
import {
  backoffDelay,
  compileQuery,
  createServiceInstance,
  CRATE_DEFAULT_WEIGHT,
  DEFAULT_WEIGHT,
  receivesTraffic,
  EndpointSet,
  formatAddress,
  fromSeedRecord,
  InvalidAddressError,
  parseAddress,
  toSeedRecord,
  withChanges,
} from '../../../lib/core/index.js';

const inst = (id: string, extra: Record<string, unknown> = {}) =>
  createServiceInstance({ service: 'orders', id, address: `10.0.0.${id.length}:50051`, ...extra });

describe('addresses', () => {
  it('parses IPv4, host names and bracketed IPv6', () => {
    expect(parseAddress('10.1.2.3:80')).toEqual({ host: '10.1.2.3', port: 80 });
    expect(parseAddress('orders.svc.local:50051')).toEqual({ host: 'orders.svc.local', port: 50051 });
    expect(parseAddress('[::1]:9000')).toEqual({ host: '::1', port: 9000 });
    expect(formatAddress('::1', 9000)).toBe('[::1]:9000');
    expect(formatAddress('10.0.0.1', 1)).toBe('10.0.0.1:1');
  });

  it.each(['10.0.0.1', '::1:80', 'http://x:80', 'unix:/tmp/s', 'host:0', 'host:70000', '[::1]80', ':80', 'a b:1', ''])(
    'rejects %j with the value in the message',
    (bad) => {
      expect(() => parseAddress(bad)).toThrow(InvalidAddressError);
      expect(() => parseAddress(bad)).toThrow(JSON.stringify(bad));
    },
  );
});

describe('ServiceInstance', () => {
  it('fills the seed defaults and freezes', () => {
    const i = createServiceInstance({ service: 'orders', address: '[fe80::1]:7' });
    expect(i).toMatchObject({
      namespace: 'default',
      weight: 1,
      healthy: true,
      host: 'fe80::1',
      port: 7,
      address: '[fe80::1]:7',
    });
    expect(i.id).toMatch(/^orders-/);
    expect(Object.isFrozen(i)).toBe(true);
  });

  it('round-trips the seed JSON and tolerates extra fields', () => {
    const i = inst('a1', {
      version: 'v1.2.0',
      tags: { tier: 'gold' },
      metadata: { zone: 'z1', custom: { rack: '7' } },
      weight: 3,
    });
    const record = toSeedRecord(i);
    expect(record).toMatchObject({ service_type: 'orders', instance_id: 'a1', metadata: { zone: 'z1', region: null } });
    expect(fromSeedRecord({ ...record, extra: true })).toEqual(i);
  });

  it('names the field and value of bad input', () => {
    expect(() => inst('w', { weight: -1 })).toThrow(
      /weight -1: expected a number >= 0, 0 meaning drained \(instance w\)/,
    );
    expect(() => inst('w', { weight: 'heavy' })).toThrow(/weight "heavy"/);
    expect(() => createServiceInstance({ service: 'bad name', address: '1.2.3.4:5' })).toThrow(/service "bad name"/);
    expect(() => fromSeedRecord({ service_type: 'orders', address: '1.2.3.4:5' })).toThrow(/instance_id/);
    expect(() => fromSeedRecord({ service_type: 'orders', instance_id: 'x', address: 'nope' })).toThrow(/"nope"/);
    expect(() =>
      fromSeedRecord({ service_type: 'orders', instance_id: 'x', address: '1.2.3.4:5', metadata: { zone: { a: 1 } } }),
    ).toThrow(/metadata.zone/);
  });

  it('accepts weight 0 as a drain marker: the instance is valid but receives no traffic', () => {
    const drained = inst('d0', { weight: 0 });
    expect(drained.weight).toBe(0);
    expect(Object.is(inst('d1', { weight: -0 }).weight, 0)).toBe(true);
    expect(receivesTraffic(drained)).toBe(false);
    expect(receivesTraffic(inst('d2', { weight: 0.001 }))).toBe(true);
    expect(receivesTraffic(inst('d3', { healthy: false }))).toBe(false);
    expect(fromSeedRecord({ ...toSeedRecord(drained) })).toEqual(drained);
  });

  it("reads the Rust crate's record: null namespace and version, and a default weight the layout chooses", () => {
    const record = {
      service_type: 'orders',
      instance_id: 'rust-1',
      address: '[2001:db8::b]:18081',
      namespace: null,
      version: null,
      tags: { region: 'us-east-1' },
      metadata: { region: null, zone: null, environment: null, custom: {} },
      healthy: true,
      weight: 200,
    };
    expect(fromSeedRecord(record)).toMatchObject({
      namespace: 'default',
      version: '',
      weight: 200,
      host: '2001:db8::b',
      metadata: { custom: {} },
    });
    const { weight: _weight, ...unweighted } = record;
    expect(fromSeedRecord(unweighted).weight).toBe(DEFAULT_WEIGHT);
    expect(fromSeedRecord(unweighted, { weight: CRATE_DEFAULT_WEIGHT }).weight).toBe(100);
  });

  it('withChanges keeps the id and re-validates', () => {
    const i = inst('a1');
    expect(withChanges(i, { weight: 5 })).toMatchObject({ id: 'a1', weight: 5 });
    expect(() => withChanges(i, { weight: -1 })).toThrow(/weight/);
  });
});

describe('EndpointSet', () => {
  it('numbers revisions and diffs against the previous snapshot', () => {
    const a = inst('a');
    const bb = inst('bb');
    const s0 = EndpointSet.initial('orders');
    expect(s0).toMatchObject({ revision: 0, resolved: false, size: 0 });
    const s1 = s0.next([a, bb]);
    expect(s1).toMatchObject({ revision: 1, state: 'ok', size: 2 });
    expect(s1.diff.added.map((e) => e.instance.id).sort()).toEqual(['a', 'bb']);
    expect(s1.next([bb, a])).toBe(s1);
    const s2 = s1.next([withChanges(a, { weight: 9 })]);
    expect(s2.revision).toBe(2);
    expect(s2.diff.removed.map((e) => e.instance.id)).toEqual(['bb']);
    expect(s2.diff.updated.map((e) => e.weight)).toEqual([9]);
    expect(Object.isFrozen(s2)).toBe(true);
  });

  it('separates empty (zero instances) from stale (unreachable, last known good kept)', () => {
    const s1 = EndpointSet.of('orders', [inst('a')]);
    const stale = s1.stale('connection refused');
    expect(stale).toMatchObject({ state: 'stale', size: 1, reason: 'connection refused', revision: 2 });
    expect(stale.stale('connection refused')).toBe(stale);
    const back = stale.next([inst('a')]);
    expect(back.state).toBe('ok');
    expect(back.next([]).state).toBe('empty');
  });
});

describe('DiscoveryQuery', () => {
  const all = [
    inst('a', { version: 'v1.0.0', tags: { env: 'prod', tier: 'gold-1' }, metadata: { zone: 'z1' } }),
    inst('bb', { version: '1.4.2', tags: { env: 'prod', tier: 'silver' }, metadata: { zone: 'z2' } }),
    inst('ccc', { version: 'v2.0.0', tags: { env: 'dev' }, metadata: { zone: 'z2' } }),
    inst('dddd', { version: 'v1.1.0', namespace: 'staging', tags: { env: 'prod' } }),
    inst('eeeee', { version: 'not-semver', tags: { env: 'prod' } }),
  ];
  const ids = (q: Parameters<typeof compileQuery>[0]) => all.filter(compileQuery(q).matches).map((i) => i.id);

  it('routes semver ranges, accepting a leading v on both sides', () => {
    expect(ids({ service: 'orders', version: '^1.0.0', versionFormat: 'semver', versionRouting: true })).toEqual([
      'a',
      'bb',
    ]);
    expect(ids({ service: 'orders', version: '>=v1.2.0', versionFormat: 'semver', versionRouting: true })).toEqual([
      'bb',
      'ccc',
    ]);
    expect(ids({ service: 'orders', version: 'v1.0.0', versionFormat: 'semver', versionRouting: true })).toEqual(['a']);
  });

  it('matches versions exactly when routing is off', () => {
    expect(ids({ service: 'orders', version: 'v1.0.0' })).toEqual(['a']);
    expect(ids({ service: 'orders', version: '^1.0.0' })).toEqual([]);
  });

  it('filters by namespace and tags (exact, prefix, regex, exists)', () => {
    expect(ids({ service: 'orders', namespace: 'staging' })).toEqual(['dddd']);
    expect(ids({ service: 'orders', tags: [{ key: 'env', value: 'prod' }] })).toEqual(['a', 'bb', 'eeeee']);
    expect(ids({ service: 'orders', tags: [{ key: 'tier', value: 'gold', pattern: 'prefix' }] })).toEqual(['a']);
    expect(ids({ service: 'orders', tags: [{ key: 'tier', value: '^s.*r$', pattern: 'regex' }] })).toEqual(['bb']);
    expect(ids({ service: 'orders', tags: [{ key: 'tier', pattern: 'exists' }] })).toEqual(['a', 'bb']);
  });

  it('does not filter by zone: a zone is a preference, applied by the client over healthy endpoints', () => {
    expect(ids({ service: 'orders', zone: 'z2' })).toEqual(['a', 'bb', 'ccc', 'eeeee']);
  });

  it('rejects bad ranges and regexes naming the field', () => {
    expect(() =>
      compileQuery({ service: 'orders', version: 'one', versionFormat: 'semver', versionRouting: true }),
    ).toThrow(/query.version.*"one"/);
    expect(() => compileQuery({ service: 'orders', tags: [{ key: 'x', value: '(', pattern: 'regex' }] })).toThrow(
      /query.tags\[0\].value/,
    );
    expect(() => compileQuery({ service: 'orders', tags: [{ key: 'x' }] })).toThrow(/query.tags\[0\].value/);
  });
});

describe('backoff', () => {
  it('grows exponentially with full jitter, capped', () => {
    expect(backoffDelay(0, { initialMs: 100, random: () => 0.999 })).toBe(99);
    expect(backoffDelay(3, { initialMs: 100, random: () => 0.5 })).toBe(400);
    expect(backoffDelay(30, { initialMs: 100, maxMs: 5_000, random: () => 0.999 })).toBe(4995);
    expect(backoffDelay(5, { random: () => 0 })).toBe(0);
  });
});
