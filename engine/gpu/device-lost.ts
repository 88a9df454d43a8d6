/**
 * A lost GPU device (driver reset, GPU fault, the adapter removed, or `device.destroy()`): every
 * later call on it fails — Dawn rejects buffer mapping with an AbortError that carries no message.
 * The engine asks here whether a failed call failed because the device is gone, so that it can
 * rebuild itself on a new device (ShearEngine's `recoverDevice` option) or end with a clear
 * GpuDeviceLostError instead of an empty "AbortError" (docs/plan.md "A lost device").
 */
import { ShineError } from '../errors.ts';

/** The device was lost and the engine could not (or was not asked to) carry on on a new one. */
export class GpuDeviceLostError extends ShineError {
  override name = 'GpuDeviceLostError';
}

const lostInfo = new WeakMap<GPUDevice, GPUDeviceLostInfo>();
const watched = new WeakSet<GPUDevice>();

/** Starts recording when `device` is lost (once per device; cheap to call again). */
export function watchDevice(device: GPUDevice): void {
  if (watched.has(device)) return;
  watched.add(device);
  void device.lost.then((info) => lostInfo.set(device, info));
}

/** Why `device` is lost, when its loss is already known (no waiting). */
export function knownLoss(device: GPUDevice): GPUDeviceLostInfo | null {
  return lostInfo.get(device) ?? null;
}

/**
 * Why `device` is lost, if it is, after a call on it threw `error`: at once when the loss is
 * already known; for errors that the WebGPU implementation raises on a lost device (AbortError,
 * OperationError, or an empty message) it also waits up to `waitMs` for `device.lost` to settle.
 * The project's own errors (bad scene, out of memory) are never a lost device.
 */
export async function lostDevice(device: GPUDevice, error: unknown, waitMs = 2000): Promise<GPUDeviceLostInfo | null> {
  const known = lostInfo.get(device);
  if (known) return known;
  if (error instanceof ShineError) return null;
  const e = error as { name?: unknown; message?: unknown } | null;
  const name = typeof e?.name === 'string' ? e.name : '';
  const message = typeof e?.message === 'string' ? e.message : '';
  if (name !== 'AbortError' && name !== 'OperationError' && message !== '' && !/lost|destroyed/i.test(message)) return null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const info = await Promise.race([device.lost, new Promise<null>((res) => (timer = setTimeout(() => res(null), waitMs)))]);
  clearTimeout(timer);
  return info;
}

/** "GPU device lost (reason: message)" for logs and errors. */
export function describeLoss(info: GPUDeviceLostInfo): string {
  const msg = info.message?.split('\n')[0].trim();
  return `GPU device lost (${info.reason ?? 'unknown'}${msg ? `: ${msg}` : ''})`;
}
