import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MissingPeerDependencyError } from '../../../lib/index.js';
import { importOptionalPeer, requireOptionalPeer } from '../../../lib/core/optional-peer.js';

const manifest = JSON.parse(readFileSync(join(import.meta.dirname, '../../../package.json'), 'utf8')) as {
  peerDependencies: Record<string, string>;
  peerDependenciesMeta: Record<string, { optional?: boolean }>;
};

function notFound(name: string): Error {
  return Object.assign(new Error(`Cannot find package '${name}' imported from /app/x.js`), {
    code: 'ERR_MODULE_NOT_FOUND',
  });
}

describe('a missing optional package', () => {
  it('fails the same way for every optional peer: the feature, the package and the install command with our range', async () => {
    const optional = Object.keys(manifest.peerDependenciesMeta).filter(
      (n) => manifest.peerDependenciesMeta[n].optional,
    );
    expect(optional.length).toBeGreaterThan(4);
    for (const name of optional) {
      const error = await importOptionalPeer(name, `feature of ${name}`, () => Promise.reject(notFound(name))).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(MissingPeerDependencyError);
      const range = manifest.peerDependencies[name];
      const spec = /\s/.test(range) ? `"${name}@${range}"` : `${name}@${range}`;
      expect((error as Error).message).toBe(`feature of ${name} needs the package ${name}: npm install ${spec}`);
    }
  });

  it("reads the backend's words as the user chose them (backend 'etcd' needs the package etcd3)", async () => {
    const error = await importOptionalPeer('etcd3', "backend 'etcd'", () => Promise.reject(notFound('etcd3'))).catch(
      (e: unknown) => e,
    );
    expect((error as Error).message).toBe("backend 'etcd' needs the package etcd3: npm install etcd3@^1.1.2");
  });

  it('is told apart from an installed package that misses one of its own dependencies (rethrown as it is)', async () => {
    const inner = notFound('some-transitive-dependency');
    await expect(importOptionalPeer('etcd3', "backend 'etcd'", () => Promise.reject(inner))).rejects.toBe(inner);
  });

  it('works synchronously too (proto-loader for getService, prom-client for metrics)', () => {
    expect(() => requireOptionalPeer('switchyard-test-no-such-package', 'a test')).toThrow(
      new MissingPeerDependencyError('a test', 'switchyard-test-no-such-package'),
    );
    expect(requireOptionalPeer<{ loadSync: unknown }>('@grpc/proto-loader', 'getService').loadSync).toBeTypeOf(
      'function',
    );
  });
});
