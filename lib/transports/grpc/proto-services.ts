import * as grpc from '@grpc/grpc-js';
import { DiscoveryError } from '../../core/errors.js';
import { requireOptionalPeer } from '../../core/optional-peer.js';
import type { ProtoSource } from '../../client/client-options.js';

/**
 * The service constructors of one client's proto, loaded on first use
 * (@grpc/proto-loader is an optional peer, needed only for a proto path).
 */
export class ProtoServices {
  private root: grpc.GrpcObject | undefined;
  private readonly found = new Map<string, grpc.ServiceClientConstructor>();

  constructor(
    private readonly client: string,
    private readonly proto: ProtoSource | undefined,
  ) {}

  /** The constructor of `name` (`Greeter` or `greeter.Greeter`); throws naming the client and what is missing. */
  get(name: string): grpc.ServiceClientConstructor {
    let constructor = this.found.get(name);
    if (constructor) return constructor;
    constructor = findService(this.load(name), name);
    if (!constructor) throw new DiscoveryError(`service '${name}' not found in the proto of client '${this.client}'`);
    this.found.set(name, constructor);
    return constructor;
  }

  private load(name: string): grpc.GrpcObject {
    if (this.root) return this.root;
    const proto = this.proto;
    if (proto?.grpcObject) return (this.root = proto.grpcObject);
    if (!proto?.path) {
      throw new DiscoveryError(
        `getService('${name}') on client '${this.client}' needs the 'proto' option ({ path } or { grpcObject }) or a client constructor`,
      );
    }
    const loader = requireOptionalPeer<typeof import('@grpc/proto-loader')>(
      '@grpc/proto-loader',
      `getService('${name}') with a proto path (client '${this.client}')`,
    );
    const definition = loader.loadSync(proto.path, {
      keepCase: true,
      longs: String,
      enums: String,
      defaults: true,
      oneofs: true,
      ...proto.loaderOptions,
    });
    return (this.root = grpc.loadPackageDefinition(definition));
  }
}

function findService(root: grpc.GrpcObject, name: string): grpc.ServiceClientConstructor | undefined {
  const direct = name
    .split('.')
    .reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], root);
  if (typeof direct === 'function' && 'service' in direct) return direct as grpc.ServiceClientConstructor;
  for (const value of Object.values(root)) {
    if (typeof value === 'function' && 'service' in value && value.serviceName === name) {
      return value;
    }
    if (value && typeof value === 'object' && !('format' in value)) {
      const inner = findService(value, name);
      if (inner) return inner;
    }
  }
  return undefined;
}
