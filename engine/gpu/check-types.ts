/**
 * The record a kernel self-check returns and the interface each check implements. In a module of
 * its own so that the registry (checks.ts, which loads checks/*.ts) and the checks (which
 * implement these) do not import each other.
 */
export interface KernelCheckResult {
  name: string;
  pass: boolean;
  /** Max error, in the unit the tolerance is expressed in (e.g. relative to max |value|). */
  maxError: number;
  tolerance: number;
  detail?: string;
  ms: number;
}

export interface KernelCheck {
  name: string;
  run(device: GPUDevice): Promise<KernelCheckResult>;
}
