import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { OutlierDetector, type OutlierSettings } from '../../../lib/health/outlier-detector.js';

const SETTINGS: OutlierSettings = {
  enabled: true,
  consecutiveFailures: 3,
  baseEjectionMs: 1_000,
  maxEjectionMs: 2_500,
  maxEjectionPercent: 50,
};

function detector(settings: Partial<OutlierSettings> = {}, mayEject = () => true) {
  const log: string[] = [];
  const d = new OutlierDetector(
    { ...SETTINGS, ...settings },
    {
      mayEject,
      ejected: (key, info) => log.push(`ejected ${key} ${info.durationMs} #${info.ejections}`),
      returned: (key) => log.push(`returned ${key}`),
    },
  );
  return { d, log };
}

describe('OutlierDetector', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('ejects after N consecutive failures; any success in between resets the count', () => {
    const { d, log } = detector();
    d.record('a', 'failure');
    d.record('a', 'failure');
    d.record('a', 'answered');
    d.record('a', 'failure');
    d.record('a', 'failure');
    expect(d.isEjected('a')).toBe(false);
    d.record('a', 'unknown');
    expect(d.record('a', 'failure')).toBe(true);
    expect(d.isEjected('a')).toBe(true);
    expect(d.ejected).toBe(1);
    expect(log).toEqual(['ejected a 1000 #1']);
  });

  it('grows the ejection with each repeated ejection, capped at the maximum, and forgives while healthy', () => {
    const { d, log } = detector();
    const fail = () => ['failure', 'failure', 'failure'].forEach((o) => d.record('a', o as 'failure'));
    fail();
    vi.advanceTimersByTime(999);
    expect(d.isEjected('a')).toBe(true);
    vi.advanceTimersByTime(1);
    expect(d.isEjected('a')).toBe(false);
    fail();
    vi.advanceTimersByTime(2_000);
    fail();
    vi.advanceTimersByTime(2_500);
    fail();
    vi.advanceTimersByTime(2_500);
    expect(log).toEqual([
      'ejected a 1000 #1',
      'returned a',
      'ejected a 2000 #2',
      'returned a',
      'ejected a 2500 #3',
      'returned a',
      'ejected a 2500 #4',
      'returned a',
    ]);
    // Three base periods in service forgive three of the four ejections: the next one is #2 and lasts 2 × base.
    vi.advanceTimersByTime(3_000);
    fail();
    expect(log.at(-1)).toBe('ejected a 2000 #2');
  });

  it('does not eject when the max-ejection share says no, and forgets endpoints that left', () => {
    let allowed = false;
    const { d } = detector({}, () => allowed);
    for (let i = 0; i < 5; i++) d.record('a', 'failure');
    expect(d.isEjected('a')).toBe(false);
    allowed = true;
    d.record('a', 'failure');
    expect(d.isEjected('a')).toBe(true);
    d.retain(new Set(['b']));
    expect(d.isEjected('a')).toBe(false);
    expect(d.ejected).toBe(0);
    d.close();
  });

  it('does nothing when disabled', () => {
    const { d } = detector({ enabled: false });
    for (let i = 0; i < 10; i++) d.record('a', 'failure');
    expect(d.isEjected('a')).toBe(false);
  });
});
