/**
 * The in-browser kernel test page: acquire the browser's WebGPU device, run every registered
 * kernel check (engine/gpu/checks.ts) in the page, then acquire a device in a Web Worker and
 * run a small compute check there. Results go to window.__shine (read by test/browser/run.ts)
 * and to the page.
 */
import { runKernelChecks } from '../../engine/gpu/checks.ts';
import type { LimitsMode } from '../../platform/device-select.ts';
import { acquire, summary, tinyComputeCheck } from './common.ts';
import type { PageReport, WorkerReport } from './protocol.ts';

declare global {
  interface Window {
    __shine: PageReport;
  }
}

const params = new URLSearchParams(location.search);
const adapter = params.get('adapter') ?? 'auto';
const limits = (params.get('limits') ?? 'adapter') as LimitsMode;
const withWorker = params.get('worker') !== '0';
/** checks=0: only a tiny compute check in the page (to probe a browser configuration quickly). */
const withChecks = params.get('checks') !== '0';
const logEl = document.getElementById('log')!;
const log = (s: string) => {
  logEl.textContent += s + '\n';
  console.log(s);
};

const report: PageReport = { done: false, userAgent: navigator.userAgent, results: [], ms: 0 };
window.__shine = report;

function runWorker(): Promise<WorkerReport> {
  return new Promise((resolve) => {
    const w = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
    w.onmessage = (ev: MessageEvent<WorkerReport>) => {
      w.terminate();
      resolve(ev.data);
    };
    w.onerror = (ev) => {
      w.terminate();
      resolve({ ok: false, error: `worker error: ${ev.message}` });
    };
    w.postMessage({ adapter, limits });
  });
}

async function main() {
  const t0 = performance.now();
  try {
    const acq = await acquire(adapter, limits);
    report.device = summary(acq);
    log(`device: ${acq.label} (${acq.name}, ${acq.featureLevel}${acq.software ? ', software' : ''}, ${acq.limitsMode} limits)`);
    if (!withChecks) {
      // Ten round trips (pipeline, upload, dispatch, read back): shows this browser's per-submit latency.
      const t1 = performance.now();
      let e = 0;
      for (let i = 0; i < 10; i++) e = Math.max(e, await tinyComputeCheck(acq.device));
      const ms = (performance.now() - t1) / 10;
      report.results.push({ name: 'tiny fma', pass: e <= 1e-6, maxError: e, tolerance: 1e-6, ms });
      log(`tiny fma check: max error ${e}, ${ms.toFixed(1)} ms per round trip`);
    }
    if (withChecks) await runKernelChecks(acq.device, (r) => {
      report.results.push(r);
      log(`${r.pass ? 'PASS' : 'FAIL'} ${r.name}: max error ${r.maxError} (tolerance ${r.tolerance}) ${r.ms.toFixed(0)} ms${r.detail ? ` — ${r.detail}` : ''}`);
    });
    acq.release();
    if (withWorker) {
      report.worker = await runWorker();
      log(`worker: ${report.worker.ok ? 'PASS' : 'FAIL'} ${report.worker.device?.label ?? ''} max error ${report.worker.maxError ?? '-'} ${report.worker.error ?? ''}`);
    }
  } catch (e) {
    report.error = String((e as Error)?.message ?? e);
    log(`error: ${report.error}`);
  }
  report.ms = performance.now() - t0;
  report.done = true;
}

void main();
