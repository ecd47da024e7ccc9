import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as api from '../../lib/index.js';
import * as testing from '../../lib/testing.js';

const LIB = join(import.meta.dirname, '../../lib');

/**
 * The public API, by name. Changing it is a decision: update this list, the
 * README's API table and docs in the same change.
 */
const VALUES = [
  'ClosedError',
  'ConfigurationError',
  'ConsistentHashStrategy',
  'Discovery',
  'DiscoveryClientProxy',
  'DiscoveryError',
  'DiscoveryFactory',
  'DiscoveryHealthIndicator',
  'DiscoveryHttpModule',
  'DiscoveryModule',
  'EndpointSet',
  'GrpcHealthService',
  'HttpEndpointError',
  'InjectServiceClient',
  'InjectServiceRegistry',
  'InvalidAddressError',
  'LeastConnectionsStrategy',
  'LocalRegistry',
  'MissingPeerDependencyError',
  'NoEndpointsError',
  'NotSupportedError',
  'OverloadedError',
  'P2cEwmaStrategy',
  'RandomStrategy',
  'RegistrationError',
  'RoundRobinStrategy',
  'ServiceClient',
  'ServiceDiscoveryModule',
  'ServiceRegistry',
  'ServingStatus',
  'WeightedRandomStrategy',
  'WeightedRoundRobinStrategy',
  'createServiceInstance',
  'discoveryAxiosConfig',
  'getServiceClientToken',
  'loadDiscoveryConfig',
  'resolveDiscoveryConfig',
  'shutdownGracefully',
];

const TYPES = [
  'BalancingStrategy',
  'CallAttempt',
  'CallHandle',
  'CallOptions',
  'CallOutcome',
  'ConfigIssue',
  'ConsistentHashOptions',
  'DependencyHealth',
  'DiscoveryClientProxyOptions',
  'DiscoveryEvent',
  'DiscoveryEventType',
  'DiscoveryExtras',
  'DiscoveryHealthOptions',
  'DiscoveryHealthReport',
  'DiscoveryHttpModuleAsyncOptions',
  'DiscoveryHttpModuleOptions',
  'DiscoveryIndicatorResult',
  'DiscoveryLogger',
  'DiscoveryMetrics',
  'DiscoveryMetricsOptions',
  'DiscoveryModuleAsyncOptions',
  'DiscoveryModuleOptions',
  'DiscoveryOptions',
  'DiscoveryOptionsFactory',
  'DiscoveryQuery',
  'Endpoint',
  'EndpointLoad',
  'EndpointReport',
  'EndpointSetDiff',
  'EndpointSetState',
  'FetchDispatcher',
  'GracefulShutdownSteps',
  'HealthLevel',
  'HttpClientOptions',
  'HttpDispatcherOptions',
  'HttpFetchInit',
  'HttpTlsOptions',
  'InstanceMetadata',
  'InstanceOptions',
  'LoadSource',
  'NoEndpointsReason',
  'OverloadOptions',
  'OverloadReason',
  'P2cEwmaOptions',
  'PickContext',
  'Picker',
  'PickerBuildContext',
  'ProtoSource',
  'Reachability',
  'ReachabilityState',
  'ReadyOptions',
  'Registration',
  'RegistrationEvent',
  'RegistrationState',
  'RegistrationTiming',
  'Registry',
  'ResolvedDiscoveryConfig',
  'RetryOptions',
  'ServiceClientOptions',
  'ServiceInstance',
  'ServiceInstanceInput',
  'ServiceRegistryEvent',
  'TagFilterOption',
];

const TESTING = [
  'MemoryRegistry',
  'MemoryStore',
  'StaticRegistry',
  'createServiceInstance',
  'staticInstances',
  'testInstance',
];

/** `name -> source file` for every name an entry file re-exports. */
function reExports(entry: string): Map<string, { file: string; typeOnly: boolean }> {
  const text = readFileSync(join(LIB, entry), 'utf8');
  const out = new Map<string, { file: string; typeOnly: boolean }>();
  for (const match of text.matchAll(/export (type )?\{([^}]+)\} from '([^']+)'/g)) {
    const file = join(LIB, dirname(entry), match[3].replace(/\.js$/, '.ts'));
    for (const raw of match[2].split(',')) {
      const spec = raw.trim();
      if (!spec) continue;
      const typeOnly = Boolean(match[1]) || spec.startsWith('type ');
      out.set(spec.replace(/^type /, ''), { file, typeOnly });
    }
  }
  return out;
}

describe('the public API', () => {
  it('exports exactly the chosen values', () => {
    expect(Object.keys(api).sort()).toEqual([...VALUES].sort());
  });

  it('exports exactly the chosen types', () => {
    const types = [...reExports('index.ts')].filter(([, e]) => e.typeOnly).map(([name]) => name);
    expect(types.sort()).toEqual([...TYPES].sort());
  });

  it("keeps users' test helpers in 'switchyard/testing', not in the main entry", () => {
    expect(Object.keys(testing).sort()).toEqual([...TESTING].sort());
    for (const name of ['MemoryRegistry', 'MemoryStore', 'StaticRegistry']) expect(name in api).toBe(false);
  });

  it('documents every exported name with JSDoc at its declaration', () => {
    const undocumented: string[] = [];
    for (const entry of ['index.ts', 'testing.ts']) {
      for (const [name, { file }] of reExports(entry)) {
        const source = readFileSync(file, 'utf8');
        const declaration = new RegExp(
          `/\\*\\*(?:(?!\\*/)[\\s\\S])*\\*/\\s*(?:@[^\\n]*\\n\\s*)*export (?:declare )?(?:abstract )?(?:async )?(?:class|function|const|interface|type|enum) ${name}\\b`,
        );
        if (!declaration.test(source)) undocumented.push(`${name} (${file.slice(LIB.length + 1)})`);
      }
    }
    expect(undocumented).toEqual([]);
  });
});
