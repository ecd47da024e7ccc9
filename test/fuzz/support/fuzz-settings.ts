import type { Parameters } from 'fast-check';

/**
 * Fuzz runs are deterministic: a fixed seed per property, so a failure
 * reproduces on every machine. `FUZZ_SEED` / `FUZZ_RUNS_FACTOR` let a person
 * explore further (e.g. `FUZZ_RUNS_FACTOR=20 npx vitest run test/fuzz`)
 * without slowing `npm test`.
 *
 * @example
 * fc.assert(fc.property(fc.string(), check), fuzzParameters(0x5eed01, 300));
 */
export function fuzzParameters<T>(seed: number, numRuns: number): Parameters<T> {
  const envSeed = process.env.FUZZ_SEED;
  const factor = Number(process.env.FUZZ_RUNS_FACTOR ?? 1);
  return {
    seed: envSeed !== undefined ? Number(envSeed) : seed,
    numRuns: Math.max(1, Math.round(numRuns * (Number.isFinite(factor) && factor > 0 ? factor : 1))),
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
