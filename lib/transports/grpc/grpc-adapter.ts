/**
 * The one place that touches grpc-js's `experimental` API (resolvers, LB
 * policies, pickers), which changes between minor versions. Tested against
 * the range declared in package.json's peerDependencies.
 */
import * as grpc from '@grpc/grpc-js';
import { createRequire } from 'node:module';
import { join } from 'node:path';

export const experimental = grpc.experimental;
export const {
  registerResolver,
  registerLoadBalancerType,
  isLoadBalancerNameRegistered,
  createChildChannelControlHelper,
  LeafLoadBalancer,
  QueuePicker,
  UnavailablePicker,
  PickResultType,
  statusOrFromValue,
  statusOrFromError,
} = grpc.experimental;

export type GrpcEndpoint = grpc.experimental.Endpoint;
export type GrpcUri = grpc.experimental.GrpcUri;
export type GrpcPicker = grpc.experimental.Picker;
export type GrpcPickArgs = grpc.experimental.PickArgs;
export type GrpcPickResult = grpc.experimental.PickResult;
export type GrpcLoadBalancer = grpc.experimental.LoadBalancer;
export type GrpcChannelControlHelper = grpc.experimental.ChannelControlHelper;
export type GrpcTypedLoadBalancingConfig = grpc.experimental.TypedLoadBalancingConfig;
export type GrpcResolver = grpc.experimental.Resolver;
export type GrpcResolverListener = grpc.experimental.ResolverListener;
export type GrpcStatusOr<T> = grpc.experimental.StatusOr<T>;
export type GrpcLeafLoadBalancer = InstanceType<typeof grpc.experimental.LeafLoadBalancer>;

/**
 * Channel-option key prefix that grpc-js leaves out of subchannel arguments,
 * so attributes we pass from the resolver to the LB policy do not split the
 * subchannel pool.
 */
export const LB_ATTRIBUTE_KEY = 'grpc.internal.no_subchannel.switchyard_endpoint_set';

const GLOBAL_MARK = Symbol.for('switchyard.grpc-js');

/**
 * Registrations live in one grpc-js module instance. When the app (or
 * @nestjs/microservices) resolves a different copy of @grpc/grpc-js, our
 * resolver is invisible to it: say so clearly instead of failing later with
 * "No resolver could be found for target discovery:///...".
 */
export function detectSecondGrpcCopy(warn: (message: string) => void): string | undefined {
  const g = globalThis as Record<symbol, unknown>;
  const mine = grpc as unknown;
  const seen = g[GLOBAL_MARK];
  if (seen && seen !== mine) {
    const message =
      'two copies of @grpc/grpc-js are loaded in this process: switchyard registered its discovery:/// resolver in one of them; dedupe @grpc/grpc-js (npm dedupe, or one version range) so every client sees it';
    warn(message);
    return message;
  }
  g[GLOBAL_MARK] = mine;
  try {
    const fromApp = createRequire(join(process.cwd(), 'package.json')).resolve('@grpc/grpc-js');
    const ours = createRequire(import.meta.url).resolve('@grpc/grpc-js');
    if (fromApp !== ours) {
      const message = `the application resolves @grpc/grpc-js at ${fromApp} but switchyard uses ${ours}: clients built on the former will not find the discovery:/// resolver; dedupe @grpc/grpc-js`;
      warn(message);
      return message;
    }
  } catch {
    // The app may not depend on grpc-js directly; nothing to compare.
  }
  return undefined;
}
