/// <reference lib="webworker" />
/** Web Worker half of the browser test: acquire a device inside the worker and run a small check. */
import { acquire, summary, tinyComputeCheck } from './common.ts';
import type { WorkerReport } from './protocol.ts';
import type { LimitsMode } from '../../platform/device-select.ts';

self.onmessage = async (ev: MessageEvent<{ adapter: string; limits: LimitsMode }>) => {
  let report: WorkerReport;
  try {
    const acq = await acquire(ev.data.adapter, ev.data.limits);
    const maxError = await tinyComputeCheck(acq.device);
    report = { ok: maxError <= 1e-6, device: summary(acq), maxError };
    acq.release();
  } catch (e) {
    report = { ok: false, error: String((e as Error)?.message ?? e) };
  }
  (self as unknown as Worker).postMessage(report);
};
