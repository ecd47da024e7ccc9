import { describe, expect, it } from 'vitest';
import type { EndpointSet } from '../../../../lib/core/endpoint-set.js';
import { createServiceInstance } from '../../../../lib/core/service-instance.js';
import { EndpointSetPublisher } from '../../../../lib/registry/shared/endpoint-set-publisher.js';
import { EndpointWatches } from '../../../../lib/registry/shared/endpoint-watches.js';

const a = createServiceInstance({ service: 'orders', id: 'a', address: '127.0.0.1:1' });
const b = createServiceInstance({ service: 'orders', id: 'b', address: '127.0.0.1:2' });

function collect(publisher: EndpointSetPublisher) {
  const sets: EndpointSet[] = [];
  let completed = false;
  const subscription = publisher.sets$.subscribe({ next: (s) => sets.push(s), complete: () => (completed = true) });
  return { sets, subscription, completed: () => completed };
}

describe('EndpointSetPublisher', () => {
  it('emits only when the set changes', () => {
    const publisher = new EndpointSetPublisher('orders');
    const seen = collect(publisher);
    expect(publisher.publish([a])).toBe(true);
    expect(publisher.publish([a])).toBe(false);
    expect(publisher.publish([a, b])).toBe(true);
    expect(publisher.publish([b, a])).toBe(false);
    expect(seen.sets.map((s) => s.instances.map((i) => i.id))).toEqual([['a'], ['a', 'b']]);
    expect(seen.sets[1].diff.added.map((e) => e.instance.id)).toEqual(['b']);
  });

  it('publishes an empty answer once, as "empty" and resolved', () => {
    const publisher = new EndpointSetPublisher('orders');
    const seen = collect(publisher);
    publisher.publish([]);
    publisher.publish([]);
    expect(seen.sets).toHaveLength(1);
    expect(seen.sets[0]).toMatchObject({ state: 'empty', resolved: true });
  });

  it('keeps the endpoints when stale, emits once per outage with its first reason, and recovers', () => {
    const publisher = new EndpointSetPublisher('orders');
    const seen = collect(publisher);
    publisher.publish([a, b]);
    expect(publisher.publishStale('registry unreachable: refused')).toBe(true);
    expect(publisher.publishStale('registry unreachable: timeout')).toBe(false);
    expect(seen.sets).toHaveLength(2);
    expect(seen.sets[1]).toMatchObject({ state: 'stale', reason: 'registry unreachable: refused' });
    expect(seen.sets[1].instances.map((i) => i.id)).toEqual(['a', 'b']);
    publisher.publish([a, b]);
    expect(seen.sets.at(-1)).toMatchObject({ state: 'ok', reason: undefined });
    expect(publisher.publishStale('registry unreachable: again')).toBe(true);
    expect(seen.sets).toHaveLength(4);
  });

  it('is stale and unresolved when the registry never answered', () => {
    const publisher = new EndpointSetPublisher('orders');
    const seen = collect(publisher);
    publisher.publishStale('registry unreachable: down at start-up');
    expect(seen.sets).toHaveLength(1);
    expect(seen.sets[0]).toMatchObject({ state: 'stale', resolved: false, revision: 1 });
  });

  it('replays the latest set to a late subscriber, and nothing before the first publication', () => {
    const publisher = new EndpointSetPublisher('orders');
    const early = collect(publisher);
    expect(early.sets).toEqual([]);
    expect(publisher.hasPublished).toBe(false);
    publisher.publish([a]);
    publisher.publish([a, b]);
    const late = collect(publisher);
    expect(late.sets).toHaveLength(1);
    expect(late.sets[0]).toBe(early.sets.at(-1));
    expect(publisher.latest).toBe(late.sets[0]);
  });

  it('completes its subscribers on close and ignores later publications', () => {
    const publisher = new EndpointSetPublisher('orders');
    const seen = collect(publisher);
    publisher.publish([a]);
    publisher.close();
    publisher.close();
    expect(seen.completed()).toBe(true);
    expect(publisher.publish([a, b])).toBe(false);
    const after = collect(publisher);
    expect(after.sets.map((s) => s.size)).toEqual([1]);
    expect(after.completed()).toBe(true);
  });
});

describe('EndpointWatches', () => {
  it('gives each subscription its own publisher and stops what feeds it on unsubscribe', () => {
    const watches = new EndpointWatches();
    const started: EndpointSetPublisher[] = [];
    let stopped = 0;
    const stream = watches.stream('orders', (publisher) => {
      started.push(publisher);
      publisher.publish([a]);
      return () => stopped++;
    });
    const first: EndpointSet[] = [];
    const second: EndpointSet[] = [];
    const s1 = stream.subscribe((s) => first.push(s));
    const s2 = stream.subscribe((s) => second.push(s));
    expect(started).toHaveLength(2);
    expect(started[0]).not.toBe(started[1]);
    expect(first).toHaveLength(1);
    expect(second).toHaveLength(1);
    expect(watches.size).toBe(2);
    s1.unsubscribe();
    expect(stopped).toBe(1);
    expect(watches.size).toBe(1);
    s2.unsubscribe();
    expect(stopped).toBe(2);
  });

  it('close() stops and completes every stream once, and completes later subscriptions at once', () => {
    const watches = new EndpointWatches();
    let stopped = 0;
    let completed = 0;
    const stream = watches.stream('orders', (publisher) => {
      publisher.publish([a]);
      return () => stopped++;
    });
    stream.subscribe({ complete: () => completed++ });
    stream.subscribe({ complete: () => completed++ });
    watches.close();
    watches.close();
    expect(stopped).toBe(2);
    expect(completed).toBe(2);
    expect(watches.size).toBe(0);
    let startedAfterClose = false;
    const late = watches.stream('orders', () => {
      startedAfterClose = true;
    });
    const sets: EndpointSet[] = [];
    let lateCompleted = false;
    late.subscribe({ next: (s) => sets.push(s), complete: () => (lateCompleted = true) });
    expect(startedAfterClose).toBe(false);
    expect(sets).toEqual([]);
    expect(lateCompleted).toBe(true);
  });
});
