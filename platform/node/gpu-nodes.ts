/** GPU device nodes on Linux (no WebGPU import: also used by the Deno layer). */
import { readdirSync } from 'node:fs';

/**
 * Linux: a hardware Vulkan driver needs a GPU device node. Without one, probing Dawn's Vulkan
 * backend only prints warnings (it rejects lavapipe), so 'auto' skips it.
 */
export function linuxGpuNodes(): string[] {
  const out: string[] = [];
  try {
    for (const f of readdirSync('/dev/dri')) if (f.startsWith('renderD') || f.startsWith('card')) out.push(`/dev/dri/${f}`);
  } catch {
    /* no /dev/dri */
  }
  try {
    for (const f of readdirSync('/dev')) if (/^nvidia\d+$/.test(f) || f === 'dxg') out.push(`/dev/${f}`);
  } catch {
    /* unreadable /dev */
  }
  return out;
}

