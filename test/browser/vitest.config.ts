import { defineConfig } from 'vitest/config';

// The in-browser kernel checks (Playwright + Chromium): run by test/run-all.sh with
// `vitest run --config test/browser/vitest.config.ts`, never by the main vitest run.
export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['test/browser/**/*.browser.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 25 * 60_000,
    hookTimeout: 25 * 60_000,
  },
});
