/**
 * The memory plan of a sub-tile (issue 13, docs/plan.md): a pure function from what the sub-tile
 * is (a summary of its scene: sources, rendered pairs per quadrant and FFT size, quadrant sizes,
 * PSF model, inference method) and what the machine has (adapter limits, a GPU memory budget,
 * host memory, cores) to what the run needs (bytes by kind, GPU and host) and how to run it
 * (pairs per batch, PSF spectra kept or recomputed per evaluation, parameter sets per call,
 * sub-tiles at once, CPU threads).
 *
 * No fixed caps: the plan takes the largest configuration that fits and, when even the smallest
 * one does not, throws a PlanError naming what is needed and what is there — before anything is
 * allocated. The GPU figures follow ShearEngine's buffers (engine/gpu/render/engine.ts) and are an
 * upper bound of what `layoutGpuBytes` (engine/scene/memory.ts) computes for the real layout: the
 * block lists of a batch are bounded by the blocks its stamps cover.
 */
import { describeByteParts, formatBytes } from '../scene/memory.ts';
import { BATCH_UNIFORM_BYTES, BLOCK_H, BLOCK_PIXELS, BLOCK_W, GRAD_PER_PAIR, PAIR_BYTES, phaseEntries } from '../gpu/render/render.wgsl.ts';
import { ShineError } from '../errors.ts';

/** Visible pairs of one quadrant rendered on one FFT size. */
export interface PlanGroup {
  quadrant: number;
  /** FFT grid side (fft_factor × stamp size). */
  m: number;
  /** Stamp side (pixels). */
  n: number;
  count: number;
  /** Σ over the group's pairs of the 16×8 blocks its stamp covers (an upper bound is fine). */
  blockEntries: number;
}

export interface PlanQuadrant {
  width: number;
  height: number;
  /** 16×8 blocks some stamp touches (an upper bound is fine: at most the whole crop). */
  activeBlocks: number;
}

/** What the sub-tile is, as far as memory goes. */
export interface PlanScene {
  sources: number;
  quadrants: PlanQuadrant[];
  groups: PlanGroup[];
  /** PSF stamp side (PSF-model pixels) and samples per detector pixel. */
  psfSize: number;
  psfOversampling: number;
  aliasOrders: number;
  method: 'map' | 'vi' | 'nuts';
  /** Parameter sets the method evaluates together: NUTS chains, VI particles (1 for MAP). */
  replicasWanted: number;
  /** Whether the diagnostics (observed / model / rms / mask per quadrant) are kept for the products. */
  diagnostics: boolean;
  /**
   * Which pixels of the crops the host keeps (engine/scene/pixels.ts): only the active blocks
   * (Stage 2's default) or the whole crops (the app). Default 'active-blocks'.
   */
  pixels?: 'active-blocks' | 'crop';
}

/** What the machine has. */
export interface PlanDevice {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  /** GPU memory the run may use (config device.memory_budget_gb, or detected). */
  gpuBudgetBytes: number;
  /** Host memory the run may use. */
  hostBudgetBytes: number;
  cores: number;
  /** A software adapter (llvmpipe, SwiftShader): its "GPU" buffers are host memory and it uses every core. */
  software: boolean;
  /** Optional words for the report (adapter name). */
  label?: string;
}

/** Bytes by kind of GPU buffer. */
export interface PlanGpuBytes {
  /** (2N+1)² M² complex per pair — all pairs (keep) or one batch per FFT size (recompute). */
  psfSpectra: number;
  /** PSF stamps, q² component scratch and order tables: build-time only (keep), resident (recompute). */
  psfStamps: number;
  fftWork: number;
  phases: number;
  images: number;
  pairs: number;
  readback: number;
  /** The most alive at once. */
  peak: number;
  /** The largest single buffer and what it is (it must fit maxBufferSize / the binding limit). */
  largestBuffer: number;
  largestBufferName: string;
}

export interface PlanHostBytes {
  /**
   * The quadrant pixels held: SCI (less a background map), RMS, FLG (4 bytes each per pixel) of
   * the active blocks and, while loading, SCI, RMS, FLG and background of one whole crop (or of
   * every whole crop with pixels 'crop').
   */
  pixels: number;
  /** The layout's compact observed pixels / weights (once, shared by the replicas) and one crop's coverage map. */
  layout: number;
  /**
   * The diagnostics: the model on the active blocks (4 bytes per active-block pixel), and one
   * quadrant's full-size observed / rms / mask / model (14) and modelled-area masks (two: the
   * images' and the χ²'s, 1 each) at a time — or, with pixels 'crop', observed, model, mask and
   * modelled of every quadrant (10 per crop pixel).
   */
  products: number;
  /** On a software adapter the GPU buffers are host memory too. */
  gpu: number;
  total: number;
}

/** How to run it. */
export interface PlanChoice {
  psf: 'keep' | 'recompute';
  /** Most pairs per batch (even: the two-per-FFT pairing does not depend on the batching). */
  maxPairsPerBatch: number;
  /** Parameter sets evaluated per GPU call (chains / particles); the rest go in further calls. */
  replicasPerCall: number;
}

export interface Plan extends PlanChoice {
  gpu: PlanGpuBytes;
  host: PlanHostBytes;
  /** Sub-tiles one GPU can hold at once, and one node can run at once (`shine run --executor local`). */
  subtilesPerGpu: number;
  subtilesPerNode: number;
  /** Threads for Stage 1 and the simulator. */
  cpuThreads: number;
  /** Batches per replica and their largest size, per FFT size. */
  batches: number;
  budget: { gpu: number; host: number; maxBinding: number };
  /** Why this choice (one line each). */
  notes: string[];
}

/** A sub-tile whose smallest plan cannot fit: the message says what is needed and what is there. */
export class PlanError extends ShineError {}

const sz = (bytes: number) => Math.max(16, Math.ceil(bytes / 4) * 4);
const PSF_CHUNK_ALIGN = 256;

/** Blocks a stamp of side n covers at most (any position). */
export function blocksPerStamp(n: number): number {
  return (Math.ceil((n - 1) / BLOCK_W) + 1) * (Math.ceil((n - 1) / BLOCK_H) + 1);
}

/** Pairs per batch the layout allows for FFT size m (engine/scene/layout.ts), before an optional cap. */
export function batchCap(m: number, slots: number, maxBinding: number, maxPairsPerBatch?: number): number {
  let cap = Math.max(1, Math.floor(maxBinding / (slots * m * m * 8)));
  cap = Math.min(cap, 65535, Math.floor(maxBinding / PAIR_BYTES));
  if (maxPairsPerBatch) cap = Math.min(cap, maxPairsPerBatch);
  if (cap > 1) cap -= cap % 2;
  return cap;
}

/** The chunk of pairs whose PSF components are transformed together (engine.ts). */
export function psfChunk(count: number, m: number, q: number, slots: number, maxBinding: number): number {
  return Math.max(1, Math.min(count, Math.floor(maxBinding / (q * q * m * m * 8)), Math.floor(65535 / Math.max(q * q, slots))));
}

/** GPU bytes of one choice (an upper bound of the engine's own count for the same choice). */
export function planGpuBytes(scene: PlanScene, choice: PlanChoice, maxBinding: number): PlanGpuBytes {
  const k = choice.replicasPerCall;
  const q = scene.psfOversampling;
  const N = scene.aliasOrders;
  const slots = (2 * N + 1) ** 2;
  const P = scene.psfSize;
  const nPairs = scene.groups.reduce((s, g) => s + g.count, 0);
  const b: PlanGpuBytes = { psfSpectra: 0, psfStamps: 0, fftWork: 0, phases: 0, images: 0, pairs: 0, readback: 0, peak: 0, largestBuffer: 0, largestBufferName: '' };
  const big = (bytes: number, name: string) => {
    if (bytes > b.largestBuffer) {
      b.largestBuffer = bytes;
      b.largestBufferName = name;
    }
    return bytes;
  };
  b.pairs += big(sz(Math.max(1, k * nPairs) * PAIR_BYTES), 'pair table');
  b.pairs += sz(Math.max(1, k * scene.sources) * 8 * 4);
  b.pairs += 2 * big(sz(Math.max(1, k * nPairs) * GRAD_PER_PAIR * 4), 'per-pair gradients');
  let active = 0;
  for (const ql of scene.quadrants) {
    const nb = Math.ceil(ql.width / BLOCK_W) * Math.ceil(ql.height / BLOCK_H);
    const a = Math.min(ql.activeBlocks, nb);
    const n = Math.max(1, a) * BLOCK_PIXELS;
    const per = sz(a ? a * BLOCK_PIXELS * 8 : 8) + 2 * sz(n * 4) + sz(Math.max(1, a) * 4) + sz(16) + sz(nb * 4) + sz(a ? a * 8 : 8);
    big(sz(a ? a * BLOCK_PIXELS * 8 : 8), 'observed pixels and weights of a quadrant');
    big(sz(nb * 4), 'block index of a quadrant');
    b.images += k * per;
    active += a;
    b.readback += a * BLOCK_PIXELS * 4;
  }
  b.images += sz(Math.max(1, k * active) * 4);
  b.readback = sz(Math.max(4, b.readback));
  // batches per group, as the layout splits them
  const maxCount = new Map<number, number>();
  const batchCounts: Array<{ m: number; count: number; entries: number }> = [];
  for (const g of scene.groups) {
    if (g.count === 0) continue;
    const cap = batchCap(g.m, slots, maxBinding, choice.maxPairsPerBatch);
    const perPairEntries = g.blockEntries / g.count;
    for (let s = 0; s < g.count; s += cap) {
      const count = Math.min(cap, g.count - s);
      batchCounts.push({ m: g.m, count, entries: Math.ceil(perPairEntries * count) });
      maxCount.set(g.m, Math.max(maxCount.get(g.m) ?? 0, count));
    }
  }
  const chunks = new Map<number, number>();
  for (const [m, cnt] of maxCount) {
    b.fftWork += big(sz(Math.ceil(cnt / 2) * m * m * 8), `FFT work (${m}×${m})`);
    b.phases += sz(cnt * 48) + sz(cnt * phaseEntries(m, N) * 8);
    const chunk = psfChunk(cnt, m, q, slots, maxBinding);
    chunks.set(m, chunk);
    b.psfStamps += sz((2 * N + 1) * q * m * 2 * 4) + big(sz(chunk * q * q * m * m * 8), `PSF components (${m}×${m})`);
    if (choice.psf === 'keep') b.psfStamps += sz(chunk * P * P * 4);
    else b.psfSpectra += big(sz(cnt * slots * m * m * 8), `PSF spectra of a batch (${m}×${m})`);
  }
  for (const bt of batchCounts) {
    const chunk = chunks.get(bt.m)!;
    const nChunks = Math.ceil(bt.count / chunk);
    b.pairs += k * sz(BATCH_UNIFORM_BYTES);
    // the block lists (touched blocks, their starts, entries): touched ≤ entries
    b.pairs += k * (sz((2 * bt.entries + 1 + bt.entries) * 4) + sz(16));
    if (choice.psf === 'keep') {
      b.psfSpectra += big(sz(bt.count * slots * bt.m * bt.m * 8), `PSF spectra of a batch (${bt.m}×${bt.m})`);
      b.psfStamps += nChunks * sz(16);
    } else {
      // every pair's PSF stamp stays on the GPU, each chunk at an aligned offset
      b.psfStamps += big(sz(nChunks * Math.ceil((chunk * P * P * 4) / PSF_CHUNK_ALIGN) * PSF_CHUNK_ALIGN), 'PSF stamps of a batch') + nChunks * sz(16);
    }
  }
  const total = b.psfSpectra + b.psfStamps + b.fftWork + b.phases + b.images + b.pairs;
  // keep: the build-time PSF buffers are freed before the model read-back is made
  b.peak = choice.psf === 'keep' ? Math.max(total, total - b.psfStamps + b.readback) : total + b.readback;
  return b;
}

/** Host bytes of the run (the GPU part only on a software adapter). */
export function planHostBytes(scene: PlanScene, gpuPeak: number, software: boolean): PlanHostBytes {
  const crop = scene.pixels === 'crop';
  let pixels = 0;
  let layout = 0;
  let products = 0;
  let largest = 0;
  for (const q of scene.quadrants) {
    const area = q.width * q.height;
    const active = Math.min(q.activeBlocks, Math.ceil(q.width / BLOCK_W) * Math.ceil(q.height / BLOCK_H)) * BLOCK_PIXELS;
    largest = Math.max(largest, area);
    // SCI, RMS, FLG and a background map: 16 B; the active-block store subtracts the map on compaction (12 B)
    pixels += crop ? 16 * area : 12 * active;
    // (observed, weight) per active-block pixel: once, whatever the replicas (layout.ts shares them)
    layout += active * 8;
    // the model on the kept blocks; the modelled-area masks are made one quadrant at a time (below)
    if (scene.diagnostics) products += crop ? 10 * area : 4 * active;
  }
  if (!crop) {
    pixels += 16 * largest;
    // one quadrant's full-size images (observed, rms, mask, model: 14 B) and its two modelled-area masks
    if (scene.diagnostics) products += 16 * largest;
  }
  // the coverage map of the quadrant being laid out (one at a time)
  layout += largest;
  const gpu = software ? gpuPeak : 0;
  return { pixels, layout, products, gpu, total: pixels + layout + products + gpu };
}

/** Pair-per-batch caps tried, largest first: what the layout allows, then halvings down to 2. */
function batchSteps(scene: PlanScene, maxBinding: number): number[] {
  const slots = (2 * scene.aliasOrders + 1) ** 2;
  let top = 2;
  for (const g of scene.groups) top = Math.max(top, Math.min(g.count + (g.count % 2), batchCap(g.m, slots, maxBinding)));
  const out: number[] = [];
  for (let c = top; c >= 2; c = c > 2 ? Math.max(2, 2 * Math.floor(c / 4)) : 0) {
    out.push(c);
    if (c === 2) break;
  }
  return out;
}

function replicaSteps(wanted: number): number[] {
  const out: number[] = [];
  for (let r = wanted; r >= 1; r = r > 1 ? Math.ceil(r / 2) : 0) {
    out.push(r);
    if (r === 1) break;
  }
  return out;
}

export interface PlanForce {
  psf?: 'keep' | 'recompute';
  maxPairsPerBatch?: number;
  replicasPerCall?: number;
}

/**
 * The plan: the first choice that fits, in the order (PSF spectra kept, then recomputed) ×
 * (all parameter sets per call, then halved) × (largest batches, then halved to 2 pairs).
 * `force` pins any of the three (tests, the out-of-memory fallback, `shine plan --psf …`).
 */
export function makePlan(scene: PlanScene, device: PlanDevice, force: PlanForce = {}): Plan {
  const maxBinding = Math.min(device.maxBufferSize, device.maxStorageBufferBindingSize);
  for (const [k, v] of Object.entries({ maxBufferSize: device.maxBufferSize, maxStorageBufferBindingSize: device.maxStorageBufferBindingSize, gpuBudgetBytes: device.gpuBudgetBytes, hostBudgetBytes: device.hostBudgetBytes, cores: device.cores })) {
    if (!(v > 0) || !Number.isFinite(v)) throw new PlanError(`plan: device ${k} must be a positive number, got ${v}`);
  }
  const psfModes: Array<'keep' | 'recompute'> = force.psf ? [force.psf] : ['keep', 'recompute'];
  const reps = force.replicasPerCall ? [force.replicasPerCall] : replicaSteps(Math.max(1, scene.replicasWanted));
  const steps = force.maxPairsPerBatch ? [force.maxPairsPerBatch] : batchSteps(scene, maxBinding);
  let smallest: { choice: PlanChoice; gpu: PlanGpuBytes; host: PlanHostBytes } | null = null;
  for (const psf of psfModes) {
    for (const replicasPerCall of reps) {
      for (const maxPairsPerBatch of steps) {
        const choice: PlanChoice = { psf, maxPairsPerBatch, replicasPerCall };
        const gpu = planGpuBytes(scene, choice, maxBinding);
        const host = planHostBytes(scene, gpu.peak, device.software);
        if (!smallest || gpu.peak < smallest.gpu.peak) smallest = { choice, gpu, host };
        if (gpu.peak <= device.gpuBudgetBytes && gpu.largestBuffer <= maxBinding && host.total <= device.hostBudgetBytes) return finish(scene, device, choice, gpu, host, maxBinding);
      }
    }
  }
  const s = smallest!;
  const what = `the sub-tile (${scene.sources} sources, ${scene.quadrants.length} quadrants, ${scene.groups.reduce((a, g) => a + g.count, 0)} rendered pairs)`;
  const how = `PSF spectra ${s.choice.psf === 'keep' ? 'kept' : 'recomputed per evaluation'}, ${s.choice.maxPairsPerBatch} pairs per batch, ${s.choice.replicasPerCall} parameter set(s) per call`;
  if (s.gpu.largestBuffer > maxBinding) {
    throw new PlanError(`${what}: its ${s.gpu.largestBufferName} needs one buffer of ${formatBytes(s.gpu.largestBuffer)}, the adapter allows ${formatBytes(maxBinding)} (min of maxBufferSize ${formatBytes(device.maxBufferSize)} and maxStorageBufferBindingSize ${formatBytes(device.maxStorageBufferBindingSize)}), even with ${how}: use fewer or smaller quadrant crops per sub-tile (a finer distributed.sub_tile_grid) or an adapter with larger limits`);
  }
  if (s.gpu.peak > device.gpuBudgetBytes) {
    throw new PlanError(`${what} needs at least ${formatBytes(s.gpu.peak)} of GPU memory (${describe(s.gpu)}) with its smallest plan (${how}), the budget is ${formatBytes(device.gpuBudgetBytes)}${device.label ? ` on ${device.label}` : ''}: use a finer distributed.sub_tile_grid, alias orders 0, or a larger device.memory_budget_gb if the device has the memory`);
  }
  throw new PlanError(`${what} needs ${formatBytes(s.host.total)} of host memory (pixels ${formatBytes(s.host.pixels)}, layout ${formatBytes(s.host.layout)}, diagnostics ${formatBytes(s.host.products)}${s.host.gpu ? `, software-adapter GPU buffers ${formatBytes(s.host.gpu)}` : ''}), the host budget is ${formatBytes(device.hostBudgetBytes)}: use a finer distributed.sub_tile_grid or a node with more memory`);
}

function describe(b: PlanGpuBytes): string {
  return describeByteParts([
    ['PSF spectra', b.psfSpectra],
    ['PSF stamps and scratch', b.psfStamps],
    ['FFT work', b.fftWork],
    ['phases', b.phases],
    ['images', b.images],
    ['pair tables', b.pairs],
    ['model read-back', b.readback],
  ]);
}

function finish(scene: PlanScene, device: PlanDevice, choice: PlanChoice, gpu: PlanGpuBytes, host: PlanHostBytes, maxBinding: number): Plan {
  const notes: string[] = [];
  const wanted = Math.max(1, scene.replicasWanted);
  if (choice.psf === 'recompute') notes.push('the PSF spectra of every pair do not fit the GPU budget: each batch rebuilds its spectra at every evaluation');
  if (choice.replicasPerCall < wanted) notes.push(`${wanted} parameter sets (${scene.method === 'nuts' ? 'chains' : scene.method === 'vi' ? 'particles' : 'Laplace columns'}) do not fit at once: ${choice.replicasPerCall} per call`);
  // Sub-tiles at once: as many as the GPU budget holds; a node also needs their host memory. A
  // software adapter already spreads one sub-tile over every core, so a second one only competes.
  const subtilesPerGpu = Math.max(1, Math.floor(device.gpuBudgetBytes / gpu.peak));
  const hostFit = Math.max(1, Math.floor(device.hostBudgetBytes / host.total));
  const subtilesPerNode = device.software ? 1 : Math.min(subtilesPerGpu, hostFit);
  if (device.software) notes.push('software adapter: its GPU buffers are host memory and it uses every core, one sub-tile at a time');
  // Stage 1 and the simulator work quadrant by quadrant: each thread holds about one crop's pixels.
  const perThread = Math.max(1, ...scene.quadrants.map((q) => 16 * q.width * q.height));
  const cpuThreads = Math.max(1, Math.min(device.cores, Math.floor(device.hostBudgetBytes / perThread)));
  let batches = 0;
  const slots = (2 * scene.aliasOrders + 1) ** 2;
  for (const g of scene.groups) if (g.count) batches += Math.ceil(g.count / batchCap(g.m, slots, maxBinding, choice.maxPairsPerBatch));
  return { ...choice, gpu, host, subtilesPerGpu, subtilesPerNode, cpuThreads, batches, budget: { gpu: device.gpuBudgetBytes, host: device.hostBudgetBytes, maxBinding }, notes };
}

/** The plan as a few lines of text (for `shine plan` and the logs). */
export function describePlan(p: Plan): string[] {
  return [
    `GPU: ${formatBytes(p.gpu.peak)} of ${formatBytes(p.budget.gpu)} (${describe(p.gpu)}); largest buffer ${formatBytes(p.gpu.largestBuffer)} (${p.gpu.largestBufferName}) of ${formatBytes(p.budget.maxBinding)}`,
    `host: ${formatBytes(p.host.total)} of ${formatBytes(p.budget.host)} (pixels ${formatBytes(p.host.pixels)}, layout ${formatBytes(p.host.layout)}, diagnostics ${formatBytes(p.host.products)}${p.host.gpu ? `, GPU buffers ${formatBytes(p.host.gpu)}` : ''})`,
    `run: PSF spectra ${p.psf === 'keep' ? 'kept' : 'recomputed per evaluation'}; ≤ ${p.maxPairsPerBatch} pairs per batch (${p.batches} batches); ${p.replicasPerCall} parameter set(s) per call`,
    `at once: ${p.subtilesPerGpu} sub-tile(s) per GPU, ${p.subtilesPerNode} per node; ${p.cpuThreads} CPU thread(s) for Stage 1 and the simulator`,
    ...p.notes.map((n) => `note: ${n}`),
  ];
}

/** The plan as recorded in the sub-tile metadata (`plan:`, snake_case, bytes as integers). */
export function planRecord(p: Plan, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const { largestBufferName, ...gpu } = p.gpu;
  return {
    psf_spectra: p.psf,
    max_pairs_per_batch: p.maxPairsPerBatch,
    batches: p.batches,
    replicas_per_call: p.replicasPerCall,
    subtiles_per_gpu: p.subtilesPerGpu,
    subtiles_per_node: p.subtilesPerNode,
    cpu_threads: p.cpuThreads,
    gpu_bytes: {
      psf_spectra: gpu.psfSpectra,
      psf_stamps: gpu.psfStamps,
      fft_work: gpu.fftWork,
      phases: gpu.phases,
      images: gpu.images,
      pairs: gpu.pairs,
      readback: gpu.readback,
      peak: gpu.peak,
      largest_buffer: gpu.largestBuffer,
      largest_buffer_name: largestBufferName,
    },
    host_bytes: { pixels: p.host.pixels, layout: p.host.layout, products: p.host.products, gpu: p.host.gpu, total: p.host.total },
    budget_bytes: { gpu: p.budget.gpu, host: p.budget.host, max_binding: p.budget.maxBinding },
    notes: p.notes,
    ...extra,
  };
}
