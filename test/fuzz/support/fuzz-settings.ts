import type { Parameters } from 'fast-check';

/**
 * Fuzz runs are deterministic: a fixed seed per property, so a failure
 * reproduces on every machine. `FUZZ_SEED` / `FUZZ_RUNS_FACTOR` let a person
 * explore further (e.g. `FUZZ_RUNS_FACTOR=20 npx vitest run test/fuzz`)
 * without slowing `npm test`. `overrides` lets a self-check run a property
 * briefly (fewer runs, no shrinking).
 *
 * @example
 * fc.assert(fc.property(fc.string(), check), fuzzParameters(0x5eed01, 300));
 */
export function fuzzParameters<T>(
  seed: number,
  numRuns: number,
  overrides: Partial<Parameters<T>> = {},
): Parameters<T> {
  const envSeed = process.env.FUZZ_SEED;
  const factor = Number(process.env.FUZZ_RUNS_FACTOR ?? 1);
  return {
    seed: envSeed !== undefined ? Number(envSeed) : seed,
    numRuns: Math.max(1, Math.round(numRuns * (Number.isFinite(factor) && factor > 0 ? factor : 1))),
    ...overrides,
  };
}

/** Error types that mean "the code crashed on this input" rather than "it refused the input". */
export function isCrash(error: unknown): boolean {
  return (
    error instanceof TypeError ||
    error instanceof RangeError ||
    error instanceof ReferenceError ||
    error instanceof SyntaxError ||
    !(error instanceof Error)
  );
}

/** What a decoder did with one input: a value, or a refusal (an error it is allowed to throw). */
export type Attempt<T> = { ok: true; value: T } | { ok: false; refusal: Error };

/**
 * Runs `decode` and nothing else inside a `try`: a refusal the caller
 * accepts comes back as `{ ok: false }`, any other exception fails the
 * property. The caller's assertions run outside, on what came back, so a
 * failed `expect` can never be mistaken for a refusal and swallowed.
 * (test/fuzz/fuzz-shape.spec.ts checks that every `try` in the fuzz suite
 * has this shape.)
 *
 * @example
 * const outcome = attempt(() => fromSeedRecord(record), (e) => e instanceof DiscoveryError, 'fromSeedRecord');
 * if (outcome.ok) checkInstance(outcome.value);
 */
export function attempt<T>(decode: () => T, isRefusal: (error: unknown) => boolean, what: string): Attempt<T> {
  try {
    return { ok: true, value: decode() };
  } catch (error) {
    if (isRefusal(error)) return { ok: false, refusal: error as Error };
    throw new Error(`${what} threw ${(error as Error)?.constructor?.name}: ${(error as Error)?.message}`, {
      cause: error,
    });
  }
}
