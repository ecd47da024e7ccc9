import type { ServiceConfig } from '@grpc/grpc-js';
import type { OverloadSettings } from '../../core/config/overload-options.js';
import type { ResolvedRetryOptions } from '../../client/retry-policy.js';

type MethodConfig = ServiceConfig['methodConfig'][number];

/**
 * The service config the resolver hands grpc-js: our LB policy, gRPC's retry
 * policy and throttling for every method, and gRPC's hedging policy for the
 * methods `hedging.grpc_methods` names (gRPC hedges with a fixed delay; a
 * `p95` delay takes the client's current p95, or 50 ms before it has one).
 */
export function serviceConfigFor(
  lbConfig: Record<string, unknown>,
  retry: ResolvedRetryOptions,
  hedging?: { settings: OverloadSettings['hedging']; currentDelayMs: number | undefined },
): ServiceConfig {
  const seconds = (ms: number) => `${(ms / 1000).toFixed(3)}s`;
  const config: ServiceConfig = { loadBalancingConfig: [{ switchyard: lbConfig }], methodConfig: [] };
  if (hedging && hedging.settings.grpcMethods.length > 0 && hedging.settings.delayMs !== 0) {
    const delay = hedging.currentDelayMs ?? (hedging.settings.delayMs === 'p95' ? 50 : hedging.settings.delayMs);
    const hedged: MethodConfig = {
      name: hedging.settings.grpcMethods.map((name) => {
        const [service, method] = name.split('/');
        return method ? { service, method } : { service };
      }),
      hedgingPolicy: {
        maxAttempts: hedging.settings.maxAttempts,
        hedgingDelay: seconds(delay),
        nonFatalStatusCodes: retry.retryableStatusCodes,
      },
    };
    config.methodConfig.push(hedged);
  }
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
  }
  if (config.methodConfig.length > 0) {
    config.retryThrottling = { maxTokens: retry.budget.maxTokens, tokenRatio: retry.budget.tokenRatio };
  }
  return config;
}
