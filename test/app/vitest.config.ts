import { defineConfig } from 'vitest/config';

// The browser app's tests: the zscale stretch against astropy (Node) and the app itself in Chromium
// (Playwright, software WebGPU). Run by test/run-all.sh (step `app`) with
// `vitest run --config test/app/vitest.config.ts`, never by the main vitest run.
export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['test/app/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 10 * 60_000,
    hookTimeout: 10 * 60_000,
  },
});
