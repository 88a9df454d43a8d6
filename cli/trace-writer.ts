/**
 * Chrome trace-event JSON from the spans the engine reported (engine/bench/trace.ts): the file
 * `shine bench --stages --trace out.json` writes, which opens in https://ui.perfetto.dev and
 * chrome://tracing (docs/bench.md "Trace"). Format: the Trace Event Format's JSON object form —
 * complete events ("ph": "X", microseconds), metadata events naming the process and its two
 * tracks, an instant event and a metadata record saying whether GPU spans exist.
 */
import { writeFile } from 'node:fs/promises';
import type { TraceRecorder, TraceSpan } from '../engine/bench/trace.ts';

const PID = 1;
const TID = { cpu: 1, gpu: 2 } as const;

export interface ChromeTraceEvent {
  name: string;
  ph: 'X' | 'M' | 'i';
  pid: number;
  tid: number;
  ts?: number;
  dur?: number;
  cat?: string;
  s?: 'g' | 'p' | 't';
  args?: Record<string, unknown>;
}

export interface ChromeTrace {
  traceEvents: ChromeTraceEvent[];
  displayTimeUnit: 'ms';
  otherData: Record<string, unknown>;
}

export interface GpuTimestampInfo {
  available: boolean;
  /** Why there are no GPU spans (e.g. the adapter lacks 'timestamp-query'). */
  reason?: string;
}

export function chromeTrace(rec: TraceRecorder, gpu: GpuTimestampInfo, otherData: Record<string, unknown> = {}): ChromeTrace {
  const t0 = rec.spans.reduce((m, s) => Math.min(m, s.startMs), Infinity);
  const origin = Number.isFinite(t0) ? t0 : 0;
  const us = (ms: number) => Math.round((ms - origin) * 1000 * 1000) / 1000;
  // parents before children: by start, then longest first (the viewers nest complete events that way)
  const spans: TraceSpan[] = [...rec.spans].sort((a, b) => a.startMs - b.startMs || b.durMs - a.durMs);
  const events: ChromeTraceEvent[] = [
    { name: 'process_name', ph: 'M', pid: PID, tid: TID.cpu, args: { name: 'shine' } },
    { name: 'thread_name', ph: 'M', pid: PID, tid: TID.cpu, args: { name: 'CPU (host, JavaScript)' } },
    { name: 'thread_name', ph: 'M', pid: PID, tid: TID.gpu, args: { name: gpu.available ? 'GPU (timestamp queries)' : 'GPU (no timestamp-query: no GPU spans)' } },
    { name: 'gpu_timestamps', ph: 'M', pid: PID, tid: TID.gpu, args: { ...gpu } },
  ];
  if (!gpu.available) {
    events.push({ name: `no GPU spans: ${gpu.reason ?? 'timestamp-query unavailable'}`, ph: 'i', s: 'g', pid: PID, tid: TID.gpu, ts: 0 });
  }
  for (const n of rec.notes) events.push({ name: n.name, ph: 'M', pid: PID, tid: TID.cpu, args: n.args });
  for (const s of spans) {
    events.push({ name: s.name, cat: s.cat, ph: 'X', pid: PID, tid: TID[s.track], ts: us(s.startMs), dur: Math.max(0, Math.round(s.durMs * 1000 * 1000) / 1000), ...(s.args ? { args: s.args } : {}) });
  }
  return { traceEvents: events, displayTimeUnit: 'ms', otherData: { gpuTimestamps: gpu, ...otherData } };
}

export async function writeChromeTrace(file: string, rec: TraceRecorder, gpu: GpuTimestampInfo, otherData: Record<string, unknown> = {}): Promise<void> {
  await writeFile(file, JSON.stringify(chromeTrace(rec, gpu, otherData)));
}
