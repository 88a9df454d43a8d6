/**
 * `shine simulate --preset ci|medium|subtile|tile|minitile --seed S --out DIR [--shear G1,G2] [--flip-shear]
 *  [--rotate-ellipticities | --rotate-ellipticities-deg D] [--no-noise] [--no-defects] [--psf-oversampling Q]
 *  [--profile exponential|spergel --spergel-nu NU] [--mag-max M] [--position-angle DEG] [--threads N] [--quiet]`: a simulated Euclid VIS observation with known shear
 * (docs/simulate.md). Files are written one HDU at a time into temporary files that are renamed
 * into place when complete.
 */
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import cliProgress from 'cli-progress';
import { UserError, type Command } from '../command.ts';
import { renderJob, simulate, type QuadrantJob, type QuadrantResult, type SimOutput } from '../../engine/sim/simulate.ts';
import { PRESETS, type PresetName } from '../../engine/sim/presets.ts';
import { normalizeRotationDeg } from '../../engine/sim/scene.ts';
import { planSimulation } from '../../engine/sim/simulate.ts';
import { simProfileFromFlags } from '../../engine/sim/galaxy-profile.ts';
import type { GalaxyProfile } from '../../engine/model/profile.ts';

const USAGE = `usage: shine simulate --preset ci|medium|subtile|tile|minitile --seed S --out DIR [--shear G1,G2] [--flip-shear]
                      [--rotate-ellipticities | --rotate-ellipticities-deg D] [--no-noise] [--no-defects]
                      [--psf-oversampling Q] [--profile exponential|spergel|spergel-per-galaxy|bulge-disk]
                      [--spergel-nu NU] [--bulge-nu NU] [--mag-max M] [--position-angle DEG] [--omit-undetected]
                      [--threads N] [--quiet]
  --shear G1,G2           the same reduced shear everywhere (default: a seeded field per sub-tile)
  --flip-shear            opposite shear; identical scene, defects and noise deviates
  --rotate-ellipticities  every galaxy's intrinsic shape rotated by 90° ((e1, e2) → (−e1, −e2));
                          identical scene, shear, defects, noise and catalog deviates otherwise
                          (with --flip-shear: shape-noise-cancelling calibration sets)
  --rotate-ellipticities-deg D  every galaxy's intrinsic shape rotated by D degrees in position
                          angle: (e1 + i e2) → (e1 + i e2)·exp(2iD), all else identical; 90 is
                          --rotate-ellipticities (45: (e1, e2) → (−e2, e1), 135: → (e2, −e1))
  --no-noise              no pixel noise (RMS unchanged)
  --no-defects            no cosmic rays, hot pixels, bad columns (saturation still applies)
  --psf-oversampling Q    PSF grid stamps sampled every 1/Q pixel: 21·Q (+1 when even) samples a
                          side, header PSFOVERS = Q (default 1: native 21 × 21 stamps)
  --profile P             galaxy light profile: exponential (default); spergel (one index, --spergel-nu);
                          spergel-per-galaxy (ν drawn per galaxy in [-0.6, 1.5], truth column NU);
                          bulge-disk (exponential disk + Spergel bulge of index --bulge-nu, B/T in
                          [0.1, 0.5], truth columns BT, HLR_B, E1_B, E2_B; docs/simulate.md)
  --spergel-nu NU         Spergel index, -0.85 ≤ NU ≤ 4 (0.5 = exponential; -0.6 ≈ de Vaucouleurs);
                          required with --profile spergel; headers GALPROF, SPERGNU
  --bulge-nu NU           Spergel index of the bulges with --profile bulge-disk (default -0.6)
  --mag-max M             faintest galaxy magnitude drawn, 18–28 (default: the preset's, 25.5 for ci,
                          23 for minitile, 26 for medium, subtile and tile): a deeper, more crowded
                          scene at a preset's geometry; header SIMMAGMX
  --position-angle DEG    instrument position angle, -360–360 (default: the preset's, 7): the same
                          sky, shear and noise seeds seen through a focal plane (pixel axes, CCD
                          gaps, PSF field) turned by another angle; header PA
  --omit-undetected       objects the MER catalog does not list (catalog S/N < 3) are left out of the
                          pixels; catalog, truth and noise unchanged; header OMITUND (docs/simulate.md)
  --threads N             worker threads rendering quadrants (default: one per 8 quadrants, at
                          most the CPU count; 1 = in the main thread)
  --quiet                 no progress / summary`;

export function nodeSimOutput(dir: string): SimOutput & { abort(): Promise<void> } {
  const open_ = new Set<string>();
  return {
    /** Remove the temporary files of files not yet closed (after a failure). */
    async abort() {
      await Promise.all([...open_].map((t) => rm(t, { force: true })));
      open_.clear();
    },
    async open(rel: string) {
      const path = join(dir, ...rel.split('/'));
      await mkdir(dirname(path), { recursive: true });
      const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.part`;
      const fh = await open(tmp, 'w');
      open_.add(tmp);
      let closed = false;
      return {
        async append(chunks: readonly Uint8Array[]) {
          for (const c of chunks) {
            let o = 0;
            while (o < c.length) o += (await fh.write(c, o, c.length - o)).bytesWritten;
          }
        },
        async close() {
          if (closed) return;
          closed = true;
          await fh.sync();
          await fh.close();
          open_.delete(tmp);
          await rename(tmp, path).catch(async (e) => {
            await rm(tmp, { force: true });
            throw e;
          });
        },
      };
    },
  };
}

// ---- worker threads: each renders whole quadrants (renderJob); the main thread writes in order ----

const WORKER_TAG = 'shine-simulate-worker';

if (!isMainThread && (workerData as { tag?: string } | null)?.tag === WORKER_TAG && parentPort) {
  const port = parentPort;
  port.on('message', (msg: { id: number; job: QuadrantJob }) => {
    try {
      const r = renderJob(msg.job);
      port.postMessage({ id: msg.id, result: r }, [r.sci.buffer, r.rms.buffer, r.flg.buffer, r.bkg.buffer, r.psf.buffer] as ArrayBuffer[]);
    } catch (e) {
      port.postMessage({ id: msg.id, error: (e as Error)?.stack ?? String(e) });
    }
  });
}

/** A pool of `n` worker threads running renderJob; `close()` terminates them. */
export function workerRenderer(n: number): { render: (job: QuadrantJob) => Promise<QuadrantResult>; close: () => Promise<void> } {
  const workers: Worker[] = [];
  const waiting = new Map<number, { resolve: (r: QuadrantResult) => void; reject: (e: Error) => void }>();
  const load: number[] = [];
  let nextId = 0;
  const self = import.meta.url;
  // Under Node the TypeScript sources need tsx's loader in the worker too (loader hooks are not
  // inherited by worker threads); Deno runs .ts natively.
  let tsxApi: string | null = null;
  if (!('Deno' in globalThis)) {
    try {
      tsxApi = import.meta.resolve('tsx/esm/api');
    } catch {
      tsxApi = null;
    }
  }
  const boot = tsxApi
    ? `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(self)}); });`
    : null;
  for (let i = 0; i < n; i++) {
    const w = boot
      ? new Worker(boot, { eval: true, workerData: { tag: WORKER_TAG } })
      : new Worker(new URL(self), { workerData: { tag: WORKER_TAG } });
    w.on('message', (m: { id: number; result?: QuadrantResult; error?: string }) => {
      const p = waiting.get(m.id);
      if (!p) return;
      waiting.delete(m.id);
      load[i]--;
      if (m.error !== undefined) p.reject(new Error(`simulate worker: ${m.error}`));
      else p.resolve(m.result!);
    });
    w.on('error', (e: unknown) => {
      const err = e instanceof Error ? e : new Error(String(e));
      for (const p of waiting.values()) p.reject(err);
      waiting.clear();
    });
    workers.push(w);
    load.push(0);
  }
  return {
    render(job) {
      const id = nextId++;
      let best = 0;
      for (let i = 1; i < n; i++) if (load[i] < load[best]) best = i;
      load[best]++;
      return new Promise((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        workers[best].postMessage({ id, job });
      });
    },
    async close() {
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}

interface Args {
  preset: PresetName;
  seed: number;
  out: string;
  shear: [number, number] | null;
  flip: boolean;
  rotate: boolean;
  /** --rotate-ellipticities-deg (null: not given). */
  rotateDeg: number | null;
  noise: boolean;
  defects: boolean;
  quiet: boolean;
  threads: number;
  /** --psf-oversampling (1: native PSF stamps). */
  psfOversampling: number;
  /** --profile spergel --spergel-nu ν (null: exponential). */
  spergelNu: number | null;
  /** The profile (--profile, --spergel-nu, --bulge-nu); null: exponential. */
  profile: GalaxyProfile | null;
  /** --mag-max (null: the preset's). */
  magMax: number | null;
  /** --position-angle (null: the preset's). */
  positionAngle: number | null;
  /** --omit-undetected. */
  omitUndetected: boolean;
}

export function parseSimulateArgs(argv: string[]): Args {
  const a: Partial<Args> & { flip: boolean; rotate: boolean; noise: boolean; defects: boolean; quiet: boolean } = { flip: false, rotate: false, rotateDeg: null, noise: true, defects: true, quiet: false, shear: null, threads: 0, psfOversampling: 1, spergelNu: null, magMax: null, positionAngle: null, omitUndetected: false };
  let profile: string | null = null;
  let bulgeNu: number | null = null;
  for (let i = 0; i < argv.length; i++) {
    let k = argv[i];
    let v: string | undefined;
    if (k === '--help' || k === '-h') throw new UserError(USAGE);
    const eq = k.indexOf('=');
    if (k.startsWith('--') && eq > 0) { v = k.slice(eq + 1); k = k.slice(0, eq); }
    const val = () => {
      const x = v ?? argv[++i];
      if (x === undefined) throw new UserError(`${k} needs a value\n${USAGE}`);
      return x;
    };
    switch (k) {
      case '--preset': {
        const p = val();
        if (!(p in PRESETS)) throw new UserError(`--preset must be one of ${Object.keys(PRESETS).join(', ')}, got '${p}'`);
        a.preset = p as PresetName;
        break;
      }
      case '--seed': {
        const s = val();
        if (!/^\d+$/.test(s) || !Number.isSafeInteger(Number(s))) throw new UserError(`--seed must be a non-negative integer, got '${s}'`);
        a.seed = Number(s);
        break;
      }
      case '--out': a.out = val(); break;
      case '--shear': {
        const s = val();
        const parts = s.split(',').map((x) => Number(x.trim()));
        if (parts.length !== 2 || parts.some((x) => !Number.isFinite(x)) || !(Math.hypot(parts[0], parts[1]) < 1)) {
          throw new UserError(`--shear must be G1,G2 with |g| < 1, got '${s}'`);
        }
        a.shear = [parts[0], parts[1]];
        break;
      }
      case '--flip-shear': a.flip = true; break;
      case '--rotate-ellipticities': a.rotate = true; break;
      case '--rotate-ellipticities-deg': {
        const d = val();
        const x = /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/.test(d) ? Number(d) : NaN;
        if (!Number.isFinite(x)) throw new UserError(`--rotate-ellipticities-deg must be a number of degrees, got '${d}'`);
        a.rotateDeg = x;
        break;
      }
      case '--no-noise': a.noise = false; break;
      case '--no-defects': a.defects = false; break;
      case '--omit-undetected': a.omitUndetected = true; break;
      case '--quiet': a.quiet = true; break;
      case '--psf-oversampling': {
        const q = val();
        if (!/^\d+$/.test(q) || !(Number(q) >= 1 && Number(q) <= 16)) throw new UserError(`--psf-oversampling must be an integer from 1 to 16 (PSF pixels per detector pixel), got '${q}'`);
        a.psfOversampling = Number(q);
        break;
      }
      case '--profile': {
        profile = val();
        if (!['exponential', 'spergel', 'spergel-per-galaxy', 'bulge-disk'].includes(profile)) {
          throw new UserError(`--profile must be exponential, spergel, spergel-per-galaxy or bulge-disk, got '${profile}'`);
        }
        break;
      }
      case '--spergel-nu': {
        const n = val();
        const x = /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/.test(n) ? Number(n) : NaN;
        if (!(x >= -0.85 && x <= 4)) throw new UserError(`--spergel-nu must be a number from -0.85 to 4 (GalSim's Spergel range), got '${n}'`);
        a.spergelNu = x;
        break;
      }
      case '--bulge-nu': {
        const n = val();
        const x = /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/.test(n) ? Number(n) : NaN;
        if (!(x >= -0.85 && x <= 4)) throw new UserError(`--bulge-nu must be a number from -0.85 to 4 (GalSim's Spergel range), got '${n}'`);
        bulgeNu = x;
        break;
      }
      case '--mag-max': {
        const m = val();
        const x = /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/.test(m) ? Number(m) : NaN;
        if (!(x >= 18 && x <= 28)) throw new UserError(`--mag-max must be a magnitude from 18 to 28, got '${m}'`);
        a.magMax = x;
        break;
      }
      case '--position-angle': {
        const m = val();
        const x = /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/.test(m) ? Number(m) : NaN;
        if (!(x >= -360 && x <= 360)) throw new UserError(`--position-angle must be an angle from -360 to 360 degrees, got '${m}'`);
        a.positionAngle = x;
        break;
      }
      case '--threads': {
        const t = val();
        if (!/^\d+$/.test(t)) throw new UserError(`--threads must be a non-negative integer, got '${t}'`);
        a.threads = Number(t);
        break;
      }
      default: throw new UserError(`unknown option '${k}'\n${USAGE}`);
    }
  }
  if (!a.preset) throw new UserError(`--preset is required\n${USAGE}`);
  if (a.seed === undefined) throw new UserError(`--seed is required\n${USAGE}`);
  if (!a.out) throw new UserError(`--out is required\n${USAGE}`);
  if (profile === 'spergel' && a.spergelNu === null) throw new UserError(`--profile spergel needs --spergel-nu NU\n${USAGE}`);
  if (profile !== 'spergel' && a.spergelNu !== null) throw new UserError('--spergel-nu needs --profile spergel');
  if (profile !== 'bulge-disk' && bulgeNu !== null) throw new UserError('--bulge-nu needs --profile bulge-disk');
  a.profile = simProfileFromFlags(profile ?? 'exponential', a.spergelNu ?? undefined, bulgeNu ?? undefined) ?? null;
  if (a.rotate && a.rotateDeg != null && normalizeRotationDeg(a.rotateDeg) !== 90) {
    throw new UserError(`--rotate-ellipticities (90°) contradicts --rotate-ellipticities-deg ${a.rotateDeg}`);
  }
  return a as Args;
}

const command: Command = {
  summary: 'write a simulated Euclid VIS observation with known shear (presets ci, medium, subtile, tile, minitile)',
  async run(argv) {
    const args = parseSimulateArgs(argv);
    const t0 = performance.now();
    const tty = !args.quiet && process.stderr.isTTY;
    const bar = tty ? new cliProgress.SingleBar({ format: 'simulate {bar} {value}/{total} quadrants | {label} | ETA {eta_formatted}', stream: process.stderr }, cliProgress.Presets.shades_classic) : null;
    let started = false;
    // default: one thread per ~8 quadrants up to the CPU count (workers cost a start-up each)
    const preset = args.magMax === null && args.positionAngle === null
      ? args.preset
      : { ...PRESETS[args.preset], ...(args.magMax !== null ? { magMax: args.magMax } : {}), ...(args.positionAngle !== null ? { pa: args.positionAngle } : {}) };
    const nQuad = args.threads ? 0 : planSimulation(preset, args.seed).exposures.reduce((a, e) => a + e.length, 0);
    const threads = args.threads || Math.max(1, Math.min(availableParallelism(), Math.ceil(nQuad / 8)));
    const pool = threads > 1 ? workerRenderer(threads) : null;
    const output = nodeSimOutput(args.out);
    const summary = await simulate(output, {
      preset, seed: args.seed, shear: args.shear, flipShear: args.flip, rotateEllipticities: args.rotate,
      ...(args.rotateDeg !== null ? { ellipticityRotationDeg: args.rotateDeg } : {}), noise: args.noise, defects: args.defects,
      ...(args.psfOversampling !== 1 ? { psfOversampling: args.psfOversampling } : {}),
      ...(args.profile ? { profile: args.profile } : {}),
      ...(args.omitUndetected ? { omitUndetected: true } : {}),
      render: pool?.render, concurrency: pool ? threads + 1 : 1,
      onProgress(done, total, label) {
        if (bar) {
          if (!started) { bar.start(total, 0, { label }); started = true; }
          bar.update(done, { label });
        } else if (!args.quiet && (done === total || done % 20 === 0)) {
          console.error(`simulate: ${done}/${total} quadrants (${label})`);
        }
      },
    })
      .catch(async (e) => {
        bar?.stop();
        await output.abort();
        throw e;
      })
      .finally(() => pool?.close());
    bar?.stop();
    if (!args.quiet) {
      const s = ((performance.now() - t0) / 1000).toFixed(1);
      const variant = [
        args.flip ? 'shear flipped' : '',
        summary.ellipticityRotationDeg ? `shapes rotated ${summary.ellipticityRotationDeg}°` : '',
        args.psfOversampling !== 1 ? `PSF stamps oversampled ×${args.psfOversampling}` : '',
      ].filter(Boolean).join(', ');
      console.log(`shine simulate: preset ${summary.preset}, seed ${args.seed}${variant ? ` (${variant})` : ''} → ${args.out} in ${s} s`);
      console.log(`  ${summary.galaxies} galaxies + ${summary.stars} stars, ${summary.catalogRows} catalog rows, ${summary.exposures} exposures, ${summary.quadrants} quadrant images`);
      console.log(`  files: ${summary.files.length} (config: ${join(args.out, 'config.yaml')})`);
    }
    return 0;
  },
};

export default command;
