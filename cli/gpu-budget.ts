/**
 * The GPU memory budget the CLI gives the engine (EngineOptions.maxGpuBytes, issue 17 item 10):
 * `device.memory_budget_gb` when configured; on a software adapter (llvmpipe, lavapipe,
 * SwiftShader: GPU buffers are host memory) half the host's memory; else undefined — the
 * engine's default (8 × maxBufferSize, at least 4 GiB).
 *
 * `planDevice` gathers every device fact the memory plan takes (engine/plan/plan.ts, docs/plan.md).
 */
import { availableParallelism, totalmem } from 'node:os';
import { defaultGpuBudget } from '../engine/scene/memory.ts';
import type { PlanDevice } from '../engine/plan/plan.ts';

export function gpuBudgetBytes(acq: { software: boolean }, configGb?: number | null): number | undefined {
  if (configGb) return Math.floor(configGb * 2 ** 30);
  if (acq.software) return Math.floor(0.5 * totalmem());
  return undefined;
}

/** The plan's device: the adapter's limits, the GPU budget above, the host's memory and cores. */
export function planDevice(acq: { software: boolean; label: string; device: Pick<GPUDevice, 'limits'> }, configGb?: number | null): PlanDevice {
  const limits = acq.device.limits;
  return {
    maxBufferSize: limits.maxBufferSize,
    maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
    gpuBudgetBytes: gpuBudgetBytes(acq, configGb) ?? defaultGpuBudget(limits),
    hostBudgetBytes: totalmem(),
    cores: availableParallelism(),
    software: acq.software,
    label: acq.label,
  };
}
