import { describe, expect, it } from 'vitest';
import { LoadTracker, onCallEnd, onCallStart } from '../../../lib/balancing/endpoint-load.js';
import { makeEndpoints } from './support/balancing-fixtures.js';

describe('LoadTracker', () => {
  it('keeps one record per endpoint key across snapshots', () => {
    const tracker = new LoadTracker();
    const [a] = makeEndpoints(1);
    const again = makeEndpoints(1)[0];
    expect(again).not.toBe(a);
    expect(tracker.load(again)).toBe(tracker.load(a));
    expect(tracker.size).toBe(1);
  });

  it('keeps the total of calls in flight across every record', () => {
    const tracker = new LoadTracker();
    const [a, b] = makeEndpoints(2);
    onCallStart(tracker.load(a));
    onCallStart(tracker.load(a));
    onCallStart(tracker.load(b));
    expect(tracker.totalInFlight()).toBe(3);
    onCallEnd(tracker.load(a), 3, 10);
    onCallEnd(tracker.load(b), 3, 10);
    onCallEnd(tracker.load(b), 3, 10); // one end too many: ignored
    expect(tracker.totalInFlight()).toBe(1);
  });

  it('prunes records of removed endpoints, but only once their calls have ended', () => {
    const tracker = new LoadTracker();
    const [a, b, c] = makeEndpoints(3);
    tracker.load(a);
    onCallStart(tracker.load(b));
    tracker.load(c);
    tracker.retain([c]);
    expect(tracker.peek(a.key)).toBeUndefined();
    expect(tracker.peek(b.key)?.inFlight).toBe(1);
    expect(tracker.peek(c.key)).toBeDefined();
    onCallEnd(tracker.load(b), 1, 5);
    tracker.retain([c]);
    expect(tracker.peek(b.key)).toBeUndefined();
    expect(tracker.size).toBe(1);
  });
});
