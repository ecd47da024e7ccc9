import { execFileSync } from 'node:child_process';
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
  files?: string[];
  scripts?: Record<string, string>;
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
      '@nestjs/axios',
      'axios',
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
        '@nestjs/axios',
        'axios',
      ]) {
        const staticImport = new RegExp(`^import\\s(?!type)[^;]*from\\s+'${optional.replace('/', '\\/')}'`, 'm');
        expect(staticImport.test(text), `${file} imports ${optional} statically`).toBe(false);
      }
    }
  });

  it('resolves its exports map to the built entry points, one library for import and require()', async () => {
    expect(manifest.name).toBe('switchyard');
    const conditions = (subpath: string) =>
      manifest.exports[subpath] as Record<'import' | 'require', { types: string; default: string }>;
    for (const subpath of ['.', './testing']) {
      for (const condition of ['import', 'require'] as const) {
        for (const file of Object.values(conditions(subpath)[condition]))
          expect(statSync(join(root, file)).isFile(), `${subpath} ${condition}: ${file}`).toBe(true);
      }
    }
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
    ]) {
      expect(lib[name], name).toBeDefined();
    }
    expect(lib.ServiceDiscoveryModule).toBe(lib.DiscoveryModule);
    // A CommonJS app's require() gets the very module import gets, not a second copy (Nest's tokens and the
    // grpc-js resolver stay one). Asked of plain Node: vitest loads imports through its own module graph.
    const script = [
      "import { createRequire } from 'node:module';",
      "const esm = await import('switchyard');",
      "const cjs = createRequire(process.cwd() + '/package.json')('switchyard');",
      "const testing = createRequire(process.cwd() + '/package.json')('switchyard/testing');",
      "const esmTesting = await import('switchyard/testing');",
      'console.log(JSON.stringify([cjs.DiscoveryModule === esm.DiscoveryModule, testing.MemoryStore === esmTesting.MemoryStore]));',
    ].join('\n');
    const same = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' });
    expect(JSON.parse(same.trim().split('\n').pop()!)).toEqual([true, true]);
    const testing = (await import('switchyard/testing')) as Record<string, unknown>;
    expect(typeof testing.MemoryRegistry).toBe('function');
    expect(typeof testing.MemoryStore).toBe('function');
  });

  it("says in engines what the README's supported versions say", () => {
    // require() of an ES module without a flag: Node 20.19+ and 22.12+ (21 and 22.0-22.11 need a flag).
    expect(manifest.engines?.node).toBe('^20.19.0 || >=22.12.0');
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const supported = /^### Supported versions\n([\s\S]*?)^##/m.exec(readme)?.[1] ?? '';
    expect(supported).toMatch(/Node\.js 20\.19 and later \| yes/);
    expect(supported).toMatch(/Node\.js 22 \(22\.12 and later\) \| yes/);
    expect(supported).toMatch(/Node\.js 22\.0 – 22\.11, 21, older \| no/);
    // The versions CI runs (scripts/peers/install-node.sh) are the ones the table names.
    const pinned = readFileSync(join(root, 'scripts/peers/install-node.sh'), 'utf8');
    for (const [, major, version] of pinned.matchAll(/\[(\d+)\]=(\d+\.\d+)\.\d+/g)) {
      expect(supported, `Node ${major}`).toMatch(
        new RegExp(`Node\\.js ${major}\\b.*\\(${version.replace('.', '\\.')}\\)`),
      );
    }
  });

  it('ships what the README and docs link to, and no source maps', () => {
    expect(manifest.files).toEqual(
      expect.arrayContaining(['dist', 'docs', 'README.md', 'CONTRIBUTING.md', 'RELIABILITY.md', 'LICENSE']),
    );
    expect(manifest.scripts?.prepack).toBe('node scripts/build.mjs --package');
  });
});
