/** FNV-1a 64-bit hash of a string, as 16 hex digits (cache keys, config hashes; not cryptographic). */
export function hash64(s: string): string {
  let h = 0xcbf29ce484222325n;
  for (const b of new TextEncoder().encode(s)) h = BigInt.asUintN(64, (h ^ BigInt(b)) * 0x100000001b3n);
  return h.toString(16).padStart(16, '0');
}
