// The project's xDS control plane (test/support/xds/*.ts, the one the mesh
// tests use) for the plain-JavaScript benchmark: transpiled with @swc/core
// (a dev dependency) into node_modules/.cache, its imports of lib/ pointed
// at the compiled dist/. One control plane for tests and benchmark alike.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from './processes.mjs';

const SOURCES = ['xds-resources', 'xds-control-plane'];

/**
 * `{ XdsControlPlane, CLUSTER_TYPE, ENDPOINT_TYPE, edsCluster, loadAssignment, ... }`
 * from the test fixture, or `{ problem }` when it cannot be loaded.
 */
export async function loadXdsFixture() {
  let swc;
  try {
    swc = createRequire(import.meta.url)('@swc/core');
  } catch (error) {
    return { problem: `@swc/core is needed to load the TypeScript xDS fixture: ${error.message.split('\n')[0]}` };
  }
  const outDir = join(ROOT, 'node_modules/.cache/switchyard-bench/xds');
  try {
    mkdirSync(outDir, { recursive: true });
    // Folders under node_modules get no package scope: mark these files as ES modules.
    writeFileSync(join(outDir, 'package.json'), '{ "type": "module" }\n');
    for (const name of SOURCES) {
      const source = readFileSync(join(ROOT, 'test/support/xds', `${name}.ts`), 'utf8');
      const { code } = swc.transformSync(source, {
        filename: `${name}.ts`,
        jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
        module: { type: 'es6' },
        sourceMaps: false,
      });
      const linked = code.replace(
        /(['"])(?:\.\.\/)+lib\/([^'"]+)\1/g,
        (_, quote, path) => `${quote}${pathToFileURL(join(ROOT, 'dist', path)).href}${quote}`,
      );
      writeFileSync(join(outDir, `${name}.js`), linked);
    }
    const plane = await import(pathToFileURL(join(outDir, 'xds-control-plane.js')).href);
    const resources = await import(pathToFileURL(join(outDir, 'xds-resources.js')).href);
    return { ...resources, ...plane };
  } catch (error) {
    return { problem: `cannot load test/support/xds: ${error.message.split('\n')[0]}` };
  }
}
