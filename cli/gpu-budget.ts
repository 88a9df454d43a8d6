/**
 * The GPU memory budget the CLI gives the engine (EngineOptions.maxGpuBytes, issue 17 item 10):
 * `device.memory_budget_gb` when configured; on a software adapter (llvmpipe, lavapipe,
 * SwiftShader: GPU buffers are host memory) half the host's memory; else undefined — the
 * engine's default (8 × maxBufferSize, at least 4 GiB).
 */
import { totalmem } from 'node:os';

export function gpuBudgetBytes(acq: { software: boolean }, configGb?: number | null): number | undefined {
  if (configGb) return Math.floor(configGb * 2 ** 30);
  if (acq.software) return Math.floor(0.5 * totalmem());
  return undefined;
}
