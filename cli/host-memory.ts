/**
 * Peak resident set size of this process in bytes, for the performance figures (docs/bench.md):
 * Node's getrusage high-water mark (`process.resourceUsage().maxRSS`, KiB); under Deno, which
 * reports only the current RSS, the current value (a lower bound of the peak); null elsewhere.
 */
export function peakRssBytes(): number | null {
  const g = globalThis as { process?: { resourceUsage?: () => { maxRSS: number } }; Deno?: { memoryUsage?: () => { rss: number } } };
  if (g.Deno?.memoryUsage) return g.Deno.memoryUsage().rss;
  if (g.process?.resourceUsage) return g.process.resourceUsage().maxRSS * 1024;
  return null;
}
