import { DiscoveryError } from '../../core/errors.js';
import { importOptionalPeer } from '../../core/optional-peer.js';
import type { DiscoveryLogger } from '../registry.interface.js';
import type { MeshSettings } from './mesh.schema.js';

type GrpcJsXds = { register?: () => void; default?: { register?: () => void } };

/**
 * Delegate mode: registers `@grpc/grpc-js-xds` (the `xds:` target scheme,
 * its resolver and LB policies) in the application's `@grpc/grpc-js`, so
 * channels to `xds:///<listener>` get gRPC's full xDS feature set (routing,
 * retries, fault injection, ring hash, outlier detection, security).
 *
 * grpc-js-xds reads its bootstrap from GRPC_XDS_BOOTSTRAP or
 * GRPC_XDS_BOOTSTRAP_CONFIG. When neither is set, the bootstrap named by
 * `backend_config.bootstrap` is exported as GRPC_XDS_BOOTSTRAP, or one is
 * built from `xds_server` and `node_id` into GRPC_XDS_BOOTSTRAP_CONFIG.
 * Returns what was done, for the log.
 *
 * @example
 * await registerGrpcJsXds(settings, logger); // then new Client('xds:///orders', credentials.createInsecure())
 */
export async function registerGrpcJsXds(
  settings: MeshSettings,
  logger: DiscoveryLogger,
  env: NodeJS.ProcessEnv = process.env,
  importer: () => Promise<GrpcJsXds> = () => import('@grpc/grpc-js-xds'),
): Promise<string> {
  const xds = await importOptionalPeer('@grpc/grpc-js-xds', "backend 'mesh'", importer);
  const register = xds.register ?? xds.default?.register;
  if (typeof register !== 'function')
    throw new DiscoveryError(
      "@grpc/grpc-js-xds does not export register() (too old for backend 'mesh' in delegate mode): npm install @grpc/grpc-js-xds@^1.14.0",
    );
  const bootstrap = exportBootstrap(settings, logger, env);
  register();
  return bootstrap;
}

function exportBootstrap(settings: MeshSettings, logger: DiscoveryLogger, env: NodeJS.ProcessEnv): string {
  const source = settings.bootstrap;
  if (env.GRPC_XDS_BOOTSTRAP || env.GRPC_XDS_BOOTSTRAP_CONFIG) {
    const used = env.GRPC_XDS_BOOTSTRAP ? `GRPC_XDS_BOOTSTRAP=${env.GRPC_XDS_BOOTSTRAP}` : 'GRPC_XDS_BOOTSTRAP_CONFIG';
    if (source?.origin === 'backend_config.bootstrap' && env.GRPC_XDS_BOOTSTRAP !== source.path) {
      logger.warn(
        `mesh: grpc-js-xds reads its bootstrap from ${used}; backend_config.bootstrap (${source.path}) is used by switchyard's own ADS client only`,
      );
    }
    return `xds:/// targets use the bootstrap in ${used}`;
  }
  if (source?.kind === 'file') {
    env.GRPC_XDS_BOOTSTRAP = source.path;
    return `xds:/// targets use the bootstrap ${source.path}`;
  }
  // grpc-js-xds insists on a locality, even an empty one.
  const node: Record<string, unknown> = { id: settings.node.id, locality: settings.node.locality ?? {} };
  if (settings.node.cluster) node.cluster = settings.node.cluster;
  env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({
    xds_servers: [
      { server_uri: settings.server.target, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] },
    ],
    node,
  });
  return `xds:/// targets use a bootstrap built from backend_config.xds_server (${settings.server.target})`;
}
