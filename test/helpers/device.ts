/** One GPUDevice per vitest worker process, released after the file. */
import { afterAll } from 'vitest';
import { acquireNodeDevice, type AcquiredDevice } from '../../platform/node/device.ts';

let acquired: Promise<AcquiredDevice> | null = null;

export function testDevice(): Promise<GPUDevice> {
  if (!acquired) {
    acquired = acquireNodeDevice();
    afterAll(async () => {
      (await acquired!).release();
    });
  }
  return acquired.then((a) => a.device);
}
