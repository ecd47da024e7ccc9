import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

// esbuild drops decorator metadata, which Nest's DI needs; swc keeps it.
const plugins = [
  swc.vite({
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true, useDefineForClassFields: false },
      target: 'es2022',
    },
  }),
];

export default defineConfig({
  plugins,
  test: {
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    projects: [
      {
        plugins,
        test: {
          name: 'suite',
          include: ['test/**/*.spec.ts'],
          exclude: ['test/**/*.serial.spec.ts', 'test/soak/**', 'test/consumer/**'],
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 30_000,
          hookTimeout: 60_000,
          pool: 'forks',
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        // Files that measure how traffic spreads by latency: run alone, after
        // the rest, so other suites' load does not blur what they measure.
        plugins,
        test: {
          name: 'serial',
          include: ['test/**/*.serial.spec.ts'],
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          pool: 'forks',
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
      {
        // The packed tarball installed into fresh Nest apps: last, alone. It
        // rebuilds dist/ the way the tarball ships it (the other tests run
        // dist/ code in child processes) and its npm installs and compiles
        // would crowd the timing-sensitive suites.
        plugins,
        test: {
          name: 'consumer',
          include: ['test/consumer/**/*.spec.ts'],
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          pool: 'forks',
          fileParallelism: false,
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});
