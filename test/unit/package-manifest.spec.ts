import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../..');
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  name: string;
  exports: Record<string, unknown>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  devDependencies?: Record<string, string>;
  engines?: { node?: string };
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : [];
  });
}

function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
}

describe('package manifest', () => {
  it('declares every package the library imports (as a dependency or peer)', () => {
    const declared = new Set([
      ...Object.keys(manifest.dependencies ?? {}),
      ...Object.keys(manifest.peerDependencies ?? {}),
    ]);
    const builtins = new Set(builtinModules);
    const missing: string[] = [];
    for (const file of sourceFiles(join(root, 'lib'))) {
      const text = readFileSync(file, 'utf8');
      // Static imports, re-exports, dynamic import() and createRequire(...)('x').
      const specifiers = [
        ...text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+'([^']+)'/gm),
        ...text.matchAll(/^\s*import\s+'([^']+)'/gm),
        ...text.matchAll(/import\(\s*'([^']+)'\s*\)/g),
        ...text.matchAll(/typeof import\('([^']+)'\)/g),
        ...text.matchAll(/\)\(\s*'([^']+)'\s*\)/g),
      ].map((m) => m[1]);
      for (const specifier of specifiers) {
        if (specifier.startsWith('.') || specifier.startsWith('node:') || builtins.has(specifier)) continue;
        const pkg = packageOf(specifier);
        if (!declared.has(pkg)) missing.push(`${pkg} (in ${file.slice(root.length + 1)})`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('keeps backend clients optional peers, loaded only by their backend', () => {
    for (const optional of [
      'etcd3',
      'consul',
      '@nestjs/terminus',
      '@grpc/proto-loader',
      '@grpc/grpc-js-xds',
      'prom-client',
    ]) {
      expect(manifest.peerDependencies?.[optional], optional).toBeDefined();
      expect(manifest.peerDependenciesMeta?.[optional]?.optional, optional).toBe(true);
    }
    // Only the backend folders import them, and only lazily (import()/require at use).
    for (const file of sourceFiles(join(root, 'lib'))) {
      const text = readFileSync(file, 'utf8');
      for (const optional of [
        'etcd3',
        'consul',
        '@nestjs/terminus',
        '@grpc/grpc-js-xds',
        '@grpc/proto-loader',
        'prom-client',
      ]) {
        const staticImport = new RegExp(`^import\\s(?!type)[^;]*from\\s+'${optional.replace('/', '\\/')}'`, 'm');
        expect(staticImport.test(text), `${file} imports ${optional} statically`).toBe(false);
      }
    }
  });

  it('resolves its exports map to the built entry point (self-reference, as users import it)', async () => {
    expect(manifest.name).toBe('switchyard');
    expect(manifest.engines?.node).toBe('>=20.19');
    const entry = manifest.exports['.'] as { types: string; import: string };
    expect(statSync(join(root, entry.import)).isFile()).toBe(true);
    expect(statSync(join(root, entry.types)).isFile()).toBe(true);
    const lib = (await import('switchyard')) as Record<string, unknown>;
    for (const name of [
      'DiscoveryModule',
      'ServiceDiscoveryModule',
      'InjectServiceClient',
      'InjectServiceRegistry',
      'DiscoveryFactory',
      'loadDiscoveryConfig',
      'ServiceClient',
      'ServiceRegistry',
      'Discovery',
      'EndpointSet',
    ]) {
      expect(lib[name], name).toBeDefined();
    }
    expect(lib.ServiceDiscoveryModule).toBe(lib.DiscoveryModule);
  });
});
