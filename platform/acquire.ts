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

export async function acquireDevice(opts: AcquireOptions = {}): Promise<AcquiredDevice> {
  switch (detectRuntime()) {
    case 'deno':
      return (await import('./deno/device.ts')).acquireDenoDevice(opts);
    case 'node':
      return (await import('./node/device.ts')).acquireNodeDevice(opts);
    default:
      return (await import('./browser/device.ts')).acquireBrowserDevice(opts);
  }
}
