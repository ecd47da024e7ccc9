import { createRequire } from 'node:module';
import { DiscoveryError } from './errors.js';

const require = createRequire(import.meta.url);

/**
 * An optional peer package that a chosen feature needs is not installed.
 * One class and one message shape for every such package:
 * `backend 'etcd' needs the package etcd3: npm install etcd3@^1.1.2`.
 */
export class MissingPeerDependencyError extends DiscoveryError {
  constructor(
    /** What needs it, as the user chose it: `backend 'etcd'`, `metrics`, `getService('Orders')`. */
    readonly feature: string,
    readonly packageName: string,
    options?: { cause?: unknown },
  ) {
    super(`${feature} needs the package ${packageName}: npm install ${installSpec(packageName)}`, options);
  }
}

/** `name@range` as declared in our peerDependencies (quoted when the range has spaces). */
function installSpec(packageName: string): string {
  const range = peerRange(packageName);
  if (!range) return packageName;
  const spec = `${packageName}@${range}`;
  return /\s/.test(spec) ? `"${spec}"` : spec;
}

let peerRanges: Record<string, string> | undefined;

function peerRange(packageName: string): string | undefined {
  if (!peerRanges) {
    try {
      // dist/core/optional-peer.js and lib/core/optional-peer.ts both sit two levels below package.json.
      peerRanges =
        (require('../../package.json') as { peerDependencies?: Record<string, string> }).peerDependencies ?? {};
    } catch {
      peerRanges = {};
    }
  }
  return peerRanges[packageName];
}

function isMissing(error: unknown, packageName: string): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') return false;
  // A package that is installed but misses one of its own dependencies is a different problem: rethrow that.
  if (typeof message !== 'string') return false;
  return [`'${packageName}'`, `"${packageName}"`, `'${packageName}/`, `"${packageName}/`].some((quoted) =>
    message.includes(quoted),
  );
}

/**
 * Imports an optional peer package, or throws {@link MissingPeerDependencyError}.
 * Pass the import as a function so bundlers and tests can substitute it.
 *
 * @example
 * const etcd3 = await importOptionalPeer('etcd3', "backend 'etcd'", () => import('etcd3'));
 */
export async function importOptionalPeer<T>(
  packageName: string,
  feature: string,
  importer: () => Promise<T>,
): Promise<T> {
  try {
    return await importer();
  } catch (error) {
    if (isMissing(error, packageName)) throw new MissingPeerDependencyError(feature, packageName, { cause: error });
    throw error;
  }
}

/**
 * Loads an optional peer package synchronously (for code paths that cannot
 * wait), or throws {@link MissingPeerDependencyError}.
 *
 * @example
 * const loader = requireOptionalPeer<typeof import('@grpc/proto-loader')>('@grpc/proto-loader', "getService('Orders')");
 */
export function requireOptionalPeer<T>(packageName: string, feature: string): T {
  try {
    return require(packageName) as T;
  } catch (error) {
    if (isMissing(error, packageName)) throw new MissingPeerDependencyError(feature, packageName, { cause: error });
    throw error;
  }
}

/**
 * Resolves a file inside an optional peer package without loading the
 * package (e.g. to find the files it ships), or throws
 * {@link MissingPeerDependencyError}. `resolve` is substitutable for tests.
 *
 * @example
 * const root = dirname(resolveOptionalPeer('@grpc/grpc-js-xds', "backend 'mesh'", 'package.json'));
 */
export function resolveOptionalPeer(
  packageName: string,
  feature: string,
  subpath: string,
  resolve: (specifier: string) => string = (specifier) => require.resolve(specifier),
): string {
  try {
    return resolve(`${packageName}/${subpath}`);
  } catch (error) {
    if (isMissing(error, packageName)) throw new MissingPeerDependencyError(feature, packageName, { cause: error });
    throw error;
  }
}
