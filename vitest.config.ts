import { defineConfig } from 'vitest/config';

// GPU tests share one software adapter on small CI machines: run files one at a
// time in forked processes (Dawn must be torn down per process, see platform/node/device.ts).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/browser/**', 'test/app/**', 'test/deno/**', 'node_modules/**'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 300_000,
  },
});
