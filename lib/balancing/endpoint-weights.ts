import type { Endpoint } from '../core/endpoint.js';
import { DiscoveryError, describeValue } from '../core/errors.js';

/**
 * An endpoint whose weight a weighted strategy cannot use (zero, negative,
 * not finite). Names the instance so an operator can find the bad record.
 */
export class InvalidWeightError extends DiscoveryError {
  constructor(
    readonly instanceId: string,
    readonly weight: unknown,
    readonly strategy: string,
  ) {
    super(
      `Invalid weight ${describeValue(weight)} of instance "${instanceId}" for load_balance "${strategy}": expected a finite number > 0`,
    );
  }
}

/**
 * Throws {@link InvalidWeightError} for the first endpoint whose weight is
 * not a finite number > 0; returns the sum of the weights.
 *
 * @example
 * const total = assertPositiveWeights(endpoints, 'weighted_random');
 */
export function assertPositiveWeights(endpoints: readonly Endpoint[], strategy: string): number {
  let total = 0;
  for (const endpoint of endpoints) {
    const weight = endpoint.weight;
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight <= 0) {
      throw new InvalidWeightError(endpoint.instance.id, weight, strategy);
    }
    total += weight;
  }
  return total;
}
