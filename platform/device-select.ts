/**
 * Runtime-independent part of device acquisition: the option/env parsing, the automatic choice
 * among candidate adapters (a hardware GPU first, then the fastest software adapter: docs/devices.md),
 * the device request with the adapter's larger limits, and the user-facing error messages.
 *
 * No `node:` imports and no `process`: used by the Node, Deno and browser layers alike.
 */
import { ShineError } from '../engine/errors.ts';

export type FeatureLevel = 'core' | 'compatibility';
export type Runtime = 'node' | 'deno' | 'browser';
/** 'adapter': request the adapter's larger compute limits (faster kernel paths); 'default': the WebGPU defaults. */
export type LimitsMode = 'adapter' | 'default';

export interface AcquireOptions {
  /**
   * Which adapter: 'auto' (default), a candidate name ('vulkan', 'opengl', 'swiftshader', …; see
   * docs/devices.md), or a case-insensitive substring of the adapter's description. Falls back to
   * the SHINE_ADAPTER environment variable, then 'auto'.
   */
  adapter?: string;
  /** Falls back to the SHINE_LIMITS environment variable, then 'adapter'. */
  limits?: LimitsMode;
  /** Do not print the one-line "shine: device …" message. */
  quiet?: boolean;
  /** Where the one-line message goes (default: console.error, i.e. stderr). */
  log?: (line: string) => void;
}

export interface AdapterInfoSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
}

/** What was tried while choosing, for `shine doctor`. */
export interface CandidateReport {
  name: string;
  found: boolean;
  software?: boolean;
  label?: string;
  /** Why it was not usable (or not probed). */
  reason?: string;
}

export interface AcquiredDevice {
  device: GPUDevice;
  adapter: GPUAdapter;
  /** Human-readable adapter name, always printed by the CLI. */
  label: string;
  /** e.g. 'vulkan', 'opengl', 'wgpu-vulkan', 'browser'. */
  backend: string;
  featureLevel: FeatureLevel;
  /** Destroys the device and drops the references to the WebGPU instance so the process can exit. */
  release(): void;
  /** The candidate chosen ('opengl', 'swiftshader', 'native', …). */
  name: string;
  runtime: Runtime;
  /** A CPU (software) adapter: llvmpipe, lavapipe, SwiftShader, … */
  software: boolean;
  info: AdapterInfoSummary;
  limitsMode: LimitsMode;
  /** Every candidate that was looked at, in order. */
  candidates: CandidateReport[];
}

/** A device could not be acquired: the message says what to install or which names exist. */
export class DeviceError extends ShineError {
  override name = 'DeviceError';
}

export const DEBIAN_PACKAGES = 'libegl1 libegl-mesa0 libgl1-mesa-dri libgles2 libvulkan1 mesa-vulkan-drivers chromium';

export function installHint(): string {
  return (
    'On Debian/Ubuntu install the software WebGPU adapters (Mesa llvmpipe/lavapipe, and SwiftShader from chromium) with\n' +
    `  sudo apt-get install -y ${DEBIAN_PACKAGES}\n` +
    'or run `sudo bash scripts/setup-debian.sh`, which does this and `npm ci`. ' +
    'With a GPU, install its vendor driver (Vulkan ICD).'
  );
}

/** The compute limits that enable faster kernel paths when the adapter offers more than the default. */
export const LARGER_LIMITS = [
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupStorageSize',
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxStorageBuffersPerShaderStage',
] as const;

/** Optional features enabled when present (kernels must test `device.features` before using them). */
export const OPTIONAL_FEATURES = ['subgroups', 'shader-f16', 'timestamp-query'] as const;

export const SOFTWARE_RE = /llvmpipe|lavapipe|softpipe|swiftshader|software|basic render|warp/i;

export function summarizeInfo(adapter: GPUAdapter): AdapterInfoSummary {
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  return {
    vendor: String(info?.vendor ?? ''),
    architecture: String(info?.architecture ?? ''),
    device: String(info?.device ?? ''),
    description: String(info?.description ?? ''),
    isFallbackAdapter: Boolean(info?.isFallbackAdapter ?? (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false),
  };
}

export function isSoftware(info: AdapterInfoSummary): boolean {
  return info.isFallbackAdapter || SOFTWARE_RE.test(`${info.vendor} ${info.architecture} ${info.device} ${info.description}`);
}

export function adapterLabel(info: AdapterInfoSummary): string {
  const parts: string[] = [];
  for (const p of [info.vendor, info.architecture, info.description, info.device]) {
    const s = p.trim();
    if (s && !/^(\d+|0x0+)$/.test(s) && !parts.some((q) => q.toLowerCase().includes(s.toLowerCase()))) parts.push(s);
  }
  return parts.join(' / ') || '(unnamed adapter)';
}

/** Normalize the adapter choice: explicit option, else the environment value, else 'auto'. */
export function resolveChoice(explicit: string | undefined, env: string | undefined): string {
  const v = (explicit ?? env ?? '').trim();
  return v === '' ? 'auto' : v;
}

export function resolveLimits(explicit: LimitsMode | undefined, env: string | undefined): LimitsMode {
  const v = explicit ?? (env?.trim() || 'adapter');
  if (v !== 'adapter' && v !== 'default') {
    throw new DeviceError(`limits must be 'adapter' or 'default', got '${v}'`, { field: 'SHINE_LIMITS' });
  }
  return v;
}

/** Parse `--adapter X`, `--adapter=X`, `--limits X` out of argv; returns the rest. */
export function parseDeviceFlags(argv: string[]): { adapter?: string; limits?: LimitsMode; rest: string[] } {
  const rest: string[] = [];
  let adapter: string | undefined;
  let limits: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const m = /^--(adapter|limits)(?:=(.*))?$/.exec(a);
    if (!m) {
      rest.push(a);
      continue;
    }
    let v = m[2];
    if (v === undefined) {
      v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new DeviceError(`--${m[1]} needs a value`);
    }
    if (m[1] === 'adapter') adapter = v;
    else limits = v;
  }
  if (limits !== undefined && limits !== 'adapter' && limits !== 'default') {
    throw new DeviceError(`--limits must be 'adapter' or 'default', got '${limits}'`);
  }
  return { adapter, limits: limits as LimitsMode | undefined, rest };
}

/** A way to get an adapter in this runtime. */
export interface Candidate {
  name: string;
  aliases?: string[];
  /** Part of the automatic choice (some, like 'opengles', are only used when asked for). */
  auto: boolean;
  /** Could this candidate be a hardware GPU? */
  canBeHardware: boolean;
  /** Speed rank when it is a software adapter (lower is faster; docs/devices.md, "Measured here"). */
  softwareRank: number;
  /** Returns null (with a reason) when there is no adapter this way. */
  probe(): Promise<ProbeResult>;
  /** In 'auto' mode only: a reason to skip probing (e.g. no GPU device node), or null. */
  autoSkip?(): string | null;
}

export interface Probed {
  adapter: GPUAdapter;
  backend: string;
  featureLevel: FeatureLevel;
  /** Keeps the WebGPU instance alive until release(). */
  keepAlive?: unknown;
}

export type ProbeResult = { ok: true; value: Probed } | { ok: false; reason: string };

interface Found {
  cand: Candidate;
  probed: Probed;
  info: AdapterInfoSummary;
  software: boolean;
}

async function probeOne(c: Candidate, reports: CandidateReport[]): Promise<Found | null> {
  let r: ProbeResult;
  try {
    r = await c.probe();
  } catch (e) {
    r = { ok: false, reason: String((e as Error)?.message ?? e) };
  }
  if (!r.ok) {
    reports.push({ name: c.name, found: false, reason: r.reason });
    return null;
  }
  const info = summarizeInfo(r.value.adapter);
  const software = isSoftware(info);
  reports.push({ name: c.name, found: true, software, label: adapterLabel(info) });
  return { cand: c, probed: r.value, info, software };
}

function matches(c: Candidate, choice: string): boolean {
  const k = choice.toLowerCase();
  return c.name === k || (c.aliases ?? []).includes(k);
}

/**
 * Choose an adapter among `candidates` (in preference order) and request a device on it.
 * 'auto': the first hardware adapter, else the software adapter with the best rank (ties: the
 * earlier candidate); a name: that candidate; anything else: the first adapter whose
 * vendor/architecture/device/description contains it.
 */
export async function selectAndRequest(
  runtime: Runtime,
  candidates: Candidate[],
  opts: AcquireOptions & { choice: string; limitsMode: LimitsMode },
): Promise<AcquiredDevice> {
  const reports: CandidateReport[] = [];
  const choice = opts.choice;
  let chosen: Found | null = null;

  if (choice.toLowerCase() === 'auto') {
    let best: Found | null = null;
    const auto = candidates.filter((c) => c.auto);
    for (let i = 0; i < auto.length; i++) {
      const c = auto[i];
      if (best && !c.canBeHardware && c.softwareRank >= best.cand.softwareRank) {
        reports.push({ name: c.name, found: false, reason: 'not probed (a faster adapter was found)' });
        continue;
      }
      const skip = c.autoSkip?.() ?? null;
      if (skip) {
        reports.push({ name: c.name, found: false, reason: skip });
        continue;
      }
      const f = await probeOne(c, reports);
      if (!f) continue;
      if (!f.software) {
        chosen = f;
        break;
      }
      if (!best || f.cand.softwareRank < best.cand.softwareRank) best = f;
    }
    chosen ??= best;
    if (!chosen) {
      throw new DeviceError(`no WebGPU adapter found (${runtime}). Tried:\n${formatReports(reports)}\n${installHint()}`);
    }
  } else {
    const named = candidates.find((c) => matches(c, choice));
    if (named) {
      chosen = await probeOne(named, reports);
      if (!chosen) {
        throw new DeviceError(
          `adapter '${choice}' is not available (${runtime}): ${reports[reports.length - 1].reason}\n${installHint()}`,
        );
      }
    } else {
      const k = choice.toLowerCase();
      for (const c of candidates) {
        const f = await probeOne(c, reports);
        if (f && `${f.info.vendor} ${f.info.architecture} ${f.info.device} ${f.info.description}`.toLowerCase().includes(k)) {
          chosen = f;
          break;
        }
      }
      if (!chosen) {
        const names = candidates.map((c) => [c.name, ...(c.aliases ?? [])].join('|')).join(', ');
        throw new DeviceError(
          `no adapter matches '${choice}' (${runtime}). Use 'auto', one of: ${names}, or a substring of an adapter ` +
            `description. Found:\n${formatReports(reports)}`,
        );
      }
    }
  }

  const { adapter, backend, featureLevel } = chosen.probed;
  let keepAlive: unknown = chosen.probed.keepAlive;
  const device = await requestDeviceWithLimits(adapter, opts.limitsMode);
  const label = adapterLabel(chosen.info);
  device.lost.then((l) => {
    if (l.reason !== 'destroyed') console.error(`shine: GPU device lost (${label}): ${l.message}`);
  });
  const acquired: AcquiredDevice = {
    device,
    adapter,
    label,
    backend,
    featureLevel,
    name: chosen.cand.name,
    runtime,
    software: chosen.software,
    info: chosen.info,
    limitsMode: opts.limitsMode,
    candidates: reports,
    release() {
      try {
        device.destroy();
      } catch {
        /* already destroyed */
      }
      keepAlive = null;
      void keepAlive;
    },
  };
  if (!opts.quiet) {
    (opts.log ?? ((s: string) => console.error(s)))(
      `shine: device ${label} [${runtime} ${backend}, ${featureLevel}${chosen.software ? ', software' : ''}, ${opts.limitsMode} limits] (choose with --adapter or SHINE_ADAPTER; current '${choice}')`,
    );
  }
  return acquired;
}

export function formatReports(reports: CandidateReport[]): string {
  return reports
    .map((r) => `  - ${r.name}: ${r.found ? `${r.label}${r.software ? ' (software)' : ''}` : `none (${r.reason})`}`)
    .join('\n');
}

/** Request a device, with the adapter's larger compute limits and optional features when asked. */
export async function requestDeviceWithLimits(adapter: GPUAdapter, mode: LimitsMode): Promise<GPUDevice> {
  const requiredLimits: Record<string, number> = {};
  const requiredFeatures: GPUFeatureName[] = [];
  if (mode === 'adapter') {
    const lim = adapter.limits as unknown as Record<string, number | undefined>;
    for (const k of LARGER_LIMITS) {
      const v = lim[k];
      if (typeof v === 'number' && Number.isFinite(v)) requiredLimits[k] = v;
    }
    // A binding cannot exceed a buffer.
    if (requiredLimits.maxStorageBufferBindingSize !== undefined && requiredLimits.maxBufferSize !== undefined) {
      requiredLimits.maxStorageBufferBindingSize = Math.min(requiredLimits.maxStorageBufferBindingSize, requiredLimits.maxBufferSize);
    }
    for (const f of OPTIONAL_FEATURES) if (adapter.features.has(f)) requiredFeatures.push(f as GPUFeatureName);
  }
  try {
    return await adapter.requestDevice({ requiredLimits, requiredFeatures });
  } catch (e) {
    if (mode === 'default') throw e;
    // Some implementations refuse a limit they advertise: fall back to the defaults.
    return await adapter.requestDevice();
  }
}
