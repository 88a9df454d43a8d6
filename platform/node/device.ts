/**
 * Node platform layer: acquire a GPUDevice from Dawn (npm `webgpu`).
 * Minimal first version: Dawn OpenGL-ES compatibility on whatever EGL gives (Mesa llvmpipe
 * on machines without a GPU). The device-selection work replaces the body, keeping the API.
 */
import { create, globals } from 'webgpu';

export interface AcquiredDevice {
  device: GPUDevice;
  adapter: GPUAdapter;
  /** Human-readable adapter name, always printed by the CLI. */
  label: string;
  backend: string;
  featureLevel: 'core' | 'compatibility';
  /** Destroys the device and releases Dawn so the process can exit. */
  release(): void;
}

let installed = false;

export async function acquireNodeDevice(): Promise<AcquiredDevice> {
  if (!installed) {
    Object.assign(globalThis, globals);
    installed = true;
  }
  process.env.EGL_PLATFORM ??= 'surfaceless';
  const gpu = create(['backend=opengl']);
  const adapter = await gpu.requestAdapter({ featureLevel: 'compatibility' });
  if (!adapter) throw new Error('no WebGPU adapter: install libegl1 libegl-mesa0 libgl1-mesa-dri libgles2');
  const device = await adapter.requestDevice();
  const info = adapter.info;
  return {
    device,
    adapter,
    label: `${info.vendor} ${info.architecture} ${info.device} ${info.description}`.trim(),
    backend: 'opengl',
    featureLevel: 'compatibility',
    release() {
      device.destroy();
    },
  };
}
