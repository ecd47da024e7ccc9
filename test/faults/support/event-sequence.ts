let lastSequence = 0;
/**
 * A position in the order things happened in this process: calls starting
 * and ending, `endpoints$` emissions, faults the test inflicts. Comparing two
 * of them says what came first without reading a clock, so the assertions
 * that use it hold however loaded the machine is.
 *
 * @example
 * const killedAt = nextSequence(); await victim.kill(); expect(failure.endSequence).toBeGreaterThan(killedAt);
 */
export function nextSequence(): number {
  return ++lastSequence;
}
