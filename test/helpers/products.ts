/** The product context of a test run of `subtileProducts` (no real adapter or wall time). */
import type { subtileProducts } from '../../engine/subtile/products.ts';

export function testProductContext(manifestFile: string, configFile: string, saveDiagnostics: boolean): Parameters<typeof subtileProducts>[2] {
  return {
    manifestFile,
    configFile,
    created: new Date().toISOString(),
    softwareVersion: 'test',
    adapter: { label: 'test', backend: 'test', featureLevel: 'core' },
    runtime: { name: 'node', version: process.version },
    saveDiagnostics,
    totalMs: 0,
  } as Parameters<typeof subtileProducts>[2];
}
