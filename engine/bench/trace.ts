/**
 * Spans for a timeline trace (docs/bench.md "Trace"): the engine and Stage 2 report what they do
 * through this small interface; the platform side turns the spans into a file (Chrome trace-event
 * JSON, platform/node/trace-writer.ts). No runtime module is imported here, so the engine stays
 * runnable in a browser.
 *
 * Times are `performance.now()` milliseconds (CPU spans) or milliseconds on the same clock after
 * calibration (GPU spans, docs/bench.md "GPU spans").
 */

export interface TraceSpan {
  name: string;
  /** Category shown by the viewer (e.g. 'stage', 'build', 'fit', 'eval', 'kernel'). */
  cat: string;
  startMs: number;
  durMs: number;
  /** 'cpu': host side (JavaScript), 'gpu': measured on the device with timestamp queries. */
  track: 'cpu' | 'gpu';
  args?: Record<string, unknown>;
}

export interface TraceSink {
  span(s: TraceSpan): void;
  /** A fact about the whole trace (adapter, whether GPU timestamps exist, …): a metadata record. */
  note(name: string, args: Record<string, unknown>): void;
}

/** Keeps every span and note in memory (the writer reads them at the end). */
export class TraceRecorder implements TraceSink {
  readonly spans: TraceSpan[] = [];
  readonly notes: Array<{ name: string; args: Record<string, unknown> }> = [];
  span(s: TraceSpan): void {
    this.spans.push(s);
  }
  note(name: string, args: Record<string, unknown>): void {
    this.notes.push({ name, args });
  }
}

/** Runs `fn` and reports it as one CPU span (also when it throws). */
export async function traced<T>(sink: TraceSink | undefined, name: string, cat: string, fn: () => Promise<T>, args?: Record<string, unknown>): Promise<T> {
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    sink?.span({ name, cat, startMs: t0, durMs: performance.now() - t0, track: 'cpu', ...(args ? { args } : {}) });
  }
}
