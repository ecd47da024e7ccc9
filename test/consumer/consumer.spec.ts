// The package as users install it: the packed tarball, installed with its
// peers from the npm registry into fresh Nest apps laid out as the Nest CLI
// generates them (Nest 11 CommonJS, Nest 12 ESM), built with their own
// tsconfig (skipLibCheck: false) and run. The apps' code is the README's
// quick start, copied out of README.md, so the README cannot drift from
// what works. npm's cache lives in .peers/npm-cache: a second run downloads
// nothing. Runs on the Node.js that runs vitest (CI runs it on 20, 22, 24, 26).
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, normalize } from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../lib/core/tcp.js';
import { relativeLinks } from '../support/markdown-links.js';
import { waitFor } from '../support/wait-for.js';
import { ConsumerApp, type ConsumerAppSpec } from './support/consumer-app.js';
import { packTarball, type PackedTarball } from './support/pack.js';
import { readQuickStart, type QuickStart } from './support/readme-quick-start.js';

const APPS: ConsumerAppSpec[] = [
  { template: 'nest11-cjs', nestMajor: 11, moduleSystem: 'CommonJS' },
  { template: 'nest12-esm', nestMajor: 12, moduleSystem: 'ESM' },
];
/** What the quick start's orders service answers for order 42. */
const ORDER_42 = { id: '42', status: 'shipped' };

/** The value after `PREFIX ` on a line of a harness's output. */
function reported<T>(output: string, prefix: string): T {
  const line = output.split('\n').find((l) => l.startsWith(`${prefix} `));
  if (!line) throw new Error(`no '${prefix}' line in:\n${output}`);
  return JSON.parse(line.slice(prefix.length + 1)) as T;
}

async function getJson(port: number, path: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text for the assertion message
  }
  return { status: response.status, body };
}

describe(`the packed tarball, installed into Nest apps (Node ${process.version})`, () => {
  const workDir = mkdtempSync(join(tmpdir(), 'switchyard-consumer-'));
  let tarball: PackedTarball;
  let quickStart: QuickStart;

  beforeAll(() => {
    quickStart = readQuickStart();
    tarball = packTarball(workDir);
    console.log(
      `[consumer] ${tarball.path.split('/').pop()}: ${tarball.files.length} files, ` +
        `${(tarball.size / 1024).toFixed(0)} KiB packed, ${(tarball.unpackedSize / 1024).toFixed(0)} KiB unpacked`,
    );
  }, 120_000);

  afterAll(() => rmSync(workDir, { recursive: true, force: true }));

  it('ships only what helps: built code and its types for both module systems, docs whose links resolve inside it', () => {
    const files = new Set(tarball.files);
    expect(tarball.files.filter((f) => f.endsWith('.map'))).toEqual([]);
    expect(tarball.files.filter((f) => /^(lib|test|scripts|bench|sample)\//.test(f))).toEqual([]);
    for (const entry of ['index', 'testing']) {
      for (const file of [`dist/${entry}.js`, `dist/${entry}.d.ts`, `dist/cjs/${entry}.js`, `dist/cjs/${entry}.d.ts`])
        expect(files.has(file), file).toBe(true);
    }
    // Every relative link of a shipped Markdown file points at a shipped file.
    const unpacked = join(workDir, 'unpacked');
    rmSync(unpacked, { recursive: true, force: true });
    execFileSync('mkdir', ['-p', unpacked]);
    execFileSync('tar', ['-xzf', tarball.path, '-C', unpacked]);
    const broken: string[] = [];
    for (const file of tarball.files.filter((f) => f.endsWith('.md'))) {
      const text = readFileSync(join(unpacked, 'package', file), 'utf8');
      for (const link of relativeLinks(text)) {
        if (!link.path) continue;
        const target = normalize(join(dirname(file), link.path));
        if (!files.has(target) && !tarball.files.some((f) => f.startsWith(`${target}/`)))
          broken.push(`${file}:${link.line} -> ${link.path}`);
      }
    }
    expect(broken).toEqual([]);
  });

  for (const spec of APPS) describeApp(spec);

  function describeApp(spec: ConsumerAppSpec): void {
    describe(`a Nest ${spec.nestMajor} ${spec.moduleSystem} app`, () => {
      let app: ConsumerApp;

      beforeAll(() => {
        app = ConsumerApp.create(spec, workDir, quickStart);
      });

      afterAll(async () => {
        await app?.stop();
      });

      it("installs the README's packages and the tarball from the registry, with their peers", async () => {
        const packages = app.installArguments(quickStart, tarball.path);
        await app.install(packages);
        const manifest = (name: string) =>
          JSON.parse(readFileSync(join(app.dir, 'node_modules', name, 'package.json'), 'utf8')) as { version: string };
        expect(manifest('@nestjs/core').version).toMatch(new RegExp(`^${spec.nestMajor}\\.`));
        expect(manifest('@nestjs/microservices').version).toMatch(new RegExp(`^${spec.nestMajor}\\.`));
        expect(manifest('switchyard').version).toBe(
          (JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string })
            .version,
        );
        // One @grpc/grpc-js, the app's: switchyard registers its resolver in it.
        expect(existsSync(join(app.dir, 'node_modules/switchyard/node_modules/@grpc/grpc-js'))).toBe(false);
      }, 660_000);

      it("generates the stub types and builds with the app's own tsconfig (skipLibCheck: false)", async () => {
        const tsconfig = JSON.parse(readFileSync(join(app.dir, 'tsconfig.json'), 'utf8')) as {
          compilerOptions: { skipLibCheck?: boolean };
        };
        expect(tsconfig.compilerOptions.skipLibCheck).toBe(false);
        expect(quickStart.commands.map((c) => c.split(' ').slice(0, 2).join(' '))).toEqual([
          'npx proto-loader-gen-types',
          'npx tsc',
        ]);
        for (const command of quickStart.commands) await app.shell(command);
        for (const entry of ['orders/main.js', 'checkout/main.js', 'consumer-test/options-check.js'])
          expect(existsSync(join(app.dir, 'dist', entry)), entry).toBe(true);
      }, 300_000);

      it("loads 'switchyard/testing' as the same library as 'switchyard'", async () => {
        const { stdout } = await app.harness('testing-entry');
        expect(reported(stdout, 'TESTING')).toEqual({
          seenByClient: ['127.0.0.1:50051'],
          inStore: ['orders 127.0.0.1:50051'],
          registryClass: 'function',
        });
      }, 60_000);

      it('applies the options forFeature gives the orders client (strategy, retries)', async () => {
        const { stdout } = await app.harness('options-check');
        expect(reported(stdout, 'OPTIONS')).toEqual({ strategy: 'least_connections', maxAttempts: 4 });
      }, 60_000);

      it('registers orders on the embedded backend; checkout reaches it three ways; SIGTERM deregisters it', async () => {
        for (const command of ['node dist/orders/main.js', 'node dist/checkout/main.js'])
          expect(quickStart.runBlock).toContain(command);
        const ordersPort = await findFreePort();
        const checkoutPort = await findFreePort();
        const orders = await app.start('orders', ordersPort);
        const checkout = await app.start('checkout', checkoutPort);
        const logs = () => `orders:\n${orders.log}\ncheckout:\n${checkout.log}`;

        // Through the ServiceClient's getService() stub (@InjectServiceClient), once orders is registered.
        await waitFor(async () => (await getJson(checkoutPort, '/orders/42')).status === 200, {
          timeoutMs: 20_000,
          what: `checkout to reach orders (${logs()})`,
        });
        for (const path of ['/orders/42', '/orders/42/with-retries', '/orders/42/via-clients-module'])
          expect(await getJson(checkoutPort, path), `${path}\n${logs()}`).toEqual({ status: 200, body: ORDER_42 });

        // The embedded backend keeps one file per instance in <TMPDIR>/switchyard/<namespace>/<service>/.
        const serviceDir = join(app.registryTmp, 'switchyard/default/orders');
        expect(readdirSync(serviceDir).filter((f) => f.endsWith('.json'))).toHaveLength(1);

        // SIGTERM: orders deregisters, drains and exits on its own; its file is gone by then (not left to expire).
        orders.signal('SIGTERM');
        await Promise.race([
          orders.waitForExit(),
          new Promise((_, reject) =>
            setTimeout(() => reject(new Error(`orders did not exit after SIGTERM\n${logs()}`)), 30_000),
          ),
        ]);
        expect(readdirSync(serviceDir).filter((f) => f.endsWith('.json'))).toEqual([]);
        // ... and checkout has seen it leave (its endpoint set is empty, as it logs), so calls now fail.
        await waitFor(() => /service 'orders': endpoint set empty/.test(checkout.log), {
          timeoutMs: 20_000,
          what: `checkout to see orders leave (${logs()})`,
        });
        expect((await getJson(checkoutPort, '/orders/42')).status).toBe(500);
        await checkout.stop();
      }, 120_000);
    });
  }
});
