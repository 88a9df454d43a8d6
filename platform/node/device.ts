/**
 * Node platform layer: acquire a GPUDevice from Dawn (npm `webgpu`).
 *
 * Candidates (platform/node/dawn.ts), chosen automatically — a hardware GPU first, then the fastest
 * software adapter (Dawn OpenGL compatibility on Mesa llvmpipe, then SwiftShader) — or by
 * `--adapter` / SHINE_ADAPTER. The choice is printed on stderr (one line) unless `quiet`.
 *
 * Clean exit: `release()` destroys the device and drops the Dawn instance; the CLI also ends with
 * process.exit() because Dawn can keep Node's event loop alive.
 */
import {
  resolveChoice,
  resolveLimits,
  selectAndRequest,
  type AcquireOptions,
  type AcquiredDevice,
  type Candidate,
} from '../device-select.ts';
import { dawnCandidates } from './dawn.ts';

export type { AcquireOptions, AcquiredDevice } from '../device-select.ts';

export function nodeCandidates(): Candidate[] {
  return dawnCandidates();
}

export async function acquireNodeDevice(opts: AcquireOptions = {}): Promise<AcquiredDevice> {
  const choice = resolveChoice(opts.adapter, process.env.SHINE_ADAPTER);
  const limitsMode = resolveLimits(opts.limits, process.env.SHINE_LIMITS);
  return selectAndRequest('node', nodeCandidates(), { ...opts, choice, limitsMode });
}
