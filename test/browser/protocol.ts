/** What the test page reports back to the Playwright harness (window.__shine). */
import type { KernelCheckResult } from '../../engine/gpu/checks.ts';

export interface DeviceSummary {
  label: string;
  name: string;
  backend: string;
  featureLevel: string;
  software: boolean;
  limitsMode: string;
  isFallbackAdapter: boolean;
  description: string;
}

export interface WorkerReport {
  ok: boolean;
  device?: DeviceSummary;
  /** Max |GPU - CPU| of the worker's small compute check. */
  maxError?: number;
  error?: string;
}

export interface PageReport {
  done: boolean;
  userAgent: string;
  device?: DeviceSummary;
  results: KernelCheckResult[];
  worker?: WorkerReport;
  error?: string;
  ms: number;
}
