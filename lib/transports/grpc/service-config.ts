import type { ServiceConfig } from '@grpc/grpc-js';
import type { ResolvedRetryOptions } from '../../client/retry-policy.js';

/** The service config the resolver hands grpc-js: our LB policy plus gRPC's retry policy and throttling. */
export function serviceConfigFor(lbConfig: Record<string, unknown>, retry: ResolvedRetryOptions): ServiceConfig {
  const seconds = (ms: number) => `${(ms / 1000).toFixed(3)}s`;
  const config: ServiceConfig = { loadBalancingConfig: [{ switchyard: lbConfig }], methodConfig: [] };
  if (retry.maxAttempts > 1) {
    config.methodConfig.push({
      name: [{}],
      retryPolicy: {
        maxAttempts: retry.maxAttempts,
        initialBackoff: seconds(retry.initialBackoffMs),
        maxBackoff: seconds(retry.maxBackoffMs),
        backoffMultiplier: retry.backoffMultiplier,
        retryableStatusCodes: retry.retryableStatusCodes,
      },
    });
    config.retryThrottling = { maxTokens: retry.budget.maxTokens, tokenRatio: retry.budget.tokenRatio };
  }
  return config;
}
