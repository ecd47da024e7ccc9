import { DiscoveryLoadBalancer, DiscoveryLoadBalancingConfig, LB_POLICY_NAME } from './discovery-load-balancer.js';
import { DiscoveryResolver } from './discovery-resolver.js';
import {
  detectSecondGrpcCopy,
  isLoadBalancerNameRegistered,
  registerLoadBalancerType,
  registerResolver,
} from './grpc-adapter.js';

let installed = false;

/**
 * Registers the `discovery:` resolver and the `switchyard` LB policy in the
 * @grpc/grpc-js this package resolves (the application's, as a peer
 * dependency). Idempotent; called by DiscoveryModule and Discovery.serveGrpcTargets().
 */
export function installGrpcIntegration(warn: (message: string) => void = console.warn): void {
  if (installed && isLoadBalancerNameRegistered(LB_POLICY_NAME)) return;
  detectSecondGrpcCopy(warn);
  registerResolver('discovery', DiscoveryResolver);
  registerLoadBalancerType(LB_POLICY_NAME, DiscoveryLoadBalancer, DiscoveryLoadBalancingConfig);
  installed = true;
}
