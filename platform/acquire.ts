/**
 * `acquireDevice(opts)`: the one entry point the CLI and commands use to get a GPUDevice. Detects
 * the runtime (Deno, Node, browser/worker) and loads that platform layer dynamically, so neither
 * runtime loads the other's code.
 */
import type { AcquireOptions, AcquiredDevice, Runtime } from './device-select.ts';

export type { AcquireOptions, AcquiredDevice, Runtime } from './device-select.ts';
export { parseDeviceFlags, DeviceError } from './device-select.ts';

export function detectRuntime(): Runtime {
  const g = globalThis as { Deno?: unknown; process?: { versions?: { node?: string } }; window?: unknown; importScripts?: unknown };
  if (g.Deno !== undefined) return 'deno';
  if (g.process?.versions?.node && g.window === undefined && g.importScripts === undefined) return 'node';
  return 'browser';
}

/** "node v20.11.0", "deno 2.1.4", or the browser's user agent. */
export function runtimeVersion(): string {
  const g = globalThis as { Deno?: { version: { deno: string } }; process?: { version?: string }; navigator?: { userAgent?: string } };
  switch (detectRuntime()) {
    case 'deno':
      return `deno ${g.Deno!.version.deno}`;
    case 'node':
      return `node ${g.process!.version}`;
    default:
      return g.navigator?.userAgent ?? 'browser';
  }
}

// The Node and Deno layers are imported through a variable with @vite-ignore so that bundlers
// (Vite for the app and the browser tests) never follow them into `webgpu` / `node:` modules.
const NODE_LAYER = './node/device.ts';
const DENO_LAYER = './deno/device.ts';

export async function acquireDevice(opts: AcquireOptions = {}): Promise<AcquiredDevice> {
  switch (detectRuntime()) {
    case 'deno': {
      const m = (await import(/* @vite-ignore */ DENO_LAYER)) as typeof import('./deno/device.ts');
      return m.acquireDenoDevice(opts);
    }
    case 'node': {
      const m = (await import(/* @vite-ignore */ NODE_LAYER)) as typeof import('./node/device.ts');
      return m.acquireNodeDevice(opts);
    }
    default:
      return (await import('./browser/device.ts')).acquireBrowserDevice(opts);
  }
}
