import { describe, expect, it } from 'vitest';
import { DiscoveryModule, resolveDiscoveryConfig, type DiscoveryModuleOptions } from '../../../lib/index.js';

// Written `as const`: every array and object is readonly. This file failing to
// type-check (npm run typecheck) is the regression this test guards against.
const OPTIONS = {
  backend: 'etcd',
  backendConfig: { endpoints: ['http://10.0.0.2:2379', 'http://10.0.0.3:2379'], ttl: 30 },
  tagFilters: [{ key: 'region', value: 'eu-west-1' }],
  loadBalance: 'round_robin',
  retry: { maxAttempts: 2, retryableStatusCodes: ['UNAVAILABLE'] },
  clients: [{ name: 'orders', tags: [{ key: 'tier', pattern: 'exists' }] }],
} as const satisfies DiscoveryModuleOptions;

describe('options written as const', () => {
  it('are accepted by the module and the configuration loader', () => {
    expect(DiscoveryModule.forRoot(OPTIONS).module).toBe(DiscoveryModule);
    const { retry: _retry, clients: _clients, ...config } = OPTIONS;
    const resolved = resolveDiscoveryConfig(config);
    expect(resolved.backend).toBe('etcd');
    expect(resolved.tagFilters).toEqual([{ key: 'region', value: 'eu-west-1', pattern: 'exact' }]);
  });
});
