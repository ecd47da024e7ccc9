import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

// The long soak run (`npm run test:soak`), kept out of `npm test`. Same
// transform as vitest.config.ts (swc keeps decorator metadata); --expose-gc
// so the soak can compare heaps after a full collection.
export default defineConfig({
  plugins: [
    swc.vite({
      jsc: {
        parser: { syntax: 'typescript', decorators: true },
        transform: { legacyDecorator: true, decoratorMetadata: true, useDefineForClassFields: false },
        target: 'es2022',
      },
    }),
  ],
  test: {
    include: ['test/soak/**/*.spec.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 300_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 1,
    execArgv: ['--expose-gc'],
  },
});
