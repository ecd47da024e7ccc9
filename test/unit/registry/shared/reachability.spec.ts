import { describe, expect, it } from 'vitest';
import { ReachabilityTracker, type ReachabilityState } from '../../../../lib/registry/shared/reachability.js';

describe('ReachabilityTracker', () => {
  it('is reachable until a request fails, then one state per outage with its first reason', () => {
    const tracker = new ReachabilityTracker();
    const states: ReachabilityState[] = [];
    tracker.state$.subscribe((s) => states.push(s));
    expect(tracker.current).toMatchObject({ reachable: true, reason: undefined });
    tracker.reachable();
    tracker.unreachable('refused');
    tracker.unreachable('timed out');
    expect(tracker.current).toMatchObject({ reachable: false, reason: 'refused' });
    tracker.reachable();
    expect(states.map((s) => [s.reachable, s.reason])).toEqual([
      [true, undefined],
      [false, 'refused'],
      [true, undefined],
    ]);
    expect(states[1].since).toBeGreaterThanOrEqual(states[0].since);
  });

  it('probe() runs the backend check: a rejection is the reason, a resolution means reachable', async () => {
    let failWith: string | undefined = 'connect ECONNREFUSED 127.0.0.1:1';
    let checks = 0;
    const tracker = new ReachabilityTracker(async () => {
      checks++;
      if (failWith) throw new Error(failWith);
    });
    expect(await tracker.probe()).toMatchObject({ reachable: false, reason: 'connect ECONNREFUSED 127.0.0.1:1' });
    failWith = undefined;
    expect(await tracker.probe()).toMatchObject({ reachable: true, reason: undefined });
    expect(checks).toBe(2);
  });

  it('replays the current state to a late subscriber and completes on close; a closed tracker asks nobody', async () => {
    let checks = 0;
    const tracker = new ReachabilityTracker(async () => {
      checks++;
    });
    tracker.unreachable('down');
    const states: ReachabilityState[] = [];
    let completed = false;
    tracker.state$.subscribe({ next: (s) => states.push(s), complete: () => (completed = true) });
    expect(states.map((s) => s.reachable)).toEqual([false]);
    tracker.close();
    expect(completed).toBe(true);
    tracker.reachable();
    expect(await tracker.probe()).toMatchObject({ reachable: false, reason: 'down' });
    expect(checks).toBe(0);
  });
});
