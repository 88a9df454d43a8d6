/**
 * `shine bench [--sources N] [--quadrants M] [--tier 64|128|256|mixed] [--repeats R] [--json]`:
 * times the engine on a synthetic sub-tile (the benchmark discipline of docs/performance.md: warm-up excluded, medians over
 * repeats, the adapter named). Reports isolated stamp rendering, the forward model (logL), the
 * gradient evaluation, pipeline compile time, pipelines created after warm-up (must be 0) and
 * peak GPU bytes.
 */
import type { Command } from '../command.ts';
import { UserError } from '../command.ts';
import { parseDeviceCommand } from '../args.ts';
import { acquireDevice } from '../../platform/acquire.ts';
import { aliasOrdersFor, isFftFactor } from '../../engine/model/validate.ts';
import { DEFAULT_FFT_FACTOR } from '../../engine/config/schema.ts';
import { ShearEngine } from '../../engine/gpu/render/engine.ts';
import { makeSyntheticScene, syntheticSceneNeeds } from '../../engine/scene/synthetic.ts';
import { defaultGpuBudget, formatBytes } from '../../engine/scene/memory.ts';
import { gpuBudgetBytes } from '../gpu-budget.ts';
import { totalmem } from 'node:os';
import { cloneParams } from '../../engine/scene/types.ts';
import { profileLabel, type GalaxyProfile } from '../../engine/model/profile.ts';
import { ensureProfileParams } from '../../engine/model/profile-params.ts';

/** The galaxy profile of --profile (with --spergel-nu, --bulge-nu). */
function benchProfile(name: string, spergelNu: number | undefined, bulgeNu: number | undefined): GalaxyProfile | undefined {
  if (bulgeNu !== undefined && name !== 'bulge-disk') throw new UserError('--bulge-nu needs --profile bulge-disk');
  if (name === 'exponential' && spergelNu === undefined) return undefined;
  if (name === 'spergel' && spergelNu !== undefined) return { type: 'spergel', nu: spergelNu };
  if (name === 'spergel-free') return { type: 'spergel', nu: spergelNu ?? 0.5, free: true };
  if (name === 'bulge-disk' && spergelNu === undefined) return { type: 'bulge_disk', bulgeNu: bulgeNu ?? -0.6 };
  throw new UserError(`--profile must be exponential, spergel (with --spergel-nu), spergel-free or bulge-disk (--spergel-nu only with spergel or spergel-free), got '${name}'`);
}

const USAGE = `usage: shine bench [--sources N=500] [--quadrants M=4] [--tier 64|128|256|mixed (64)] [--repeats R=5]
                   [--size WxH (2048x2066)] [--replicas K=1] [--psf-oversampling Q=1] [--alias-orders auto|N] [--spergel-nu NU]
                   [--profile exponential|spergel|spergel-free|bulge-disk] [--bulge-nu NU]
                   [--json] [--adapter X] [--limits adapter|default]
       shine bench --stages --config C --tile-id T --sub-tile R,C [--method map|nuts] [--trace out.json] [--json]   (docs/bench.md)
  --replicas K   also time K parameter sets in one evaluateMany call (NUTS chains / VI particles)
  --psf-oversampling Q, --alias-orders N   PSF stamps sampled Q times per pixel; alias orders folded
                 (auto = ceil((Q−1)/2)); see docs/forward-model.md "Aliasing"
  --spergel-nu NU   render Spergel profiles of index NU instead of exponentials
  --profile P    galaxy profile (docs/forward-model.md): exponential (default), spergel (index --spergel-nu),
                 spergel-free (ν per source, started at --spergel-nu or 0.5), bulge-disk (exponential disk +
                 Spergel bulge of index --bulge-nu, default -0.6; B/T 0.3, bulge hlr ½ the disk's)
  --fft-factor F FFT size = F × stamp size: 1, 1.5, 2, 3, 4, … (default 1.5, as stamps.fft_factor; 2 is
                 the grid of the README's CPU tables; smaller grids are cheaper, light beyond them
                 wraps around: docs/bench.md "FFT size")
  --gradient-only time only the gradient (no stamps-only / forward timings)`;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function timeIt(repeats: number, fn: () => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  return out;
}

const bench: Command = {
  summary: 'benchmark stamp rendering, forward model and gradient on a synthetic sub-tile',
  async run(argv) {
    // the stage benchmark (docs/bench.md) on a prepared sub-tile (cli/commands/bench-stages.ts, docs/bench.md)
    if (argv.includes('--stages')) return (await import('./bench-stages.ts')).runStages(argv);
    const parsed = await parseDeviceCommand(argv, { sources: 'number', quadrants: 'number', tier: 'string', repeats: 'number', size: 'string', json: 'boolean', seed: 'number', replicas: 'number', 'psf-oversampling': 'number', 'alias-orders': 'string', 'spergel-nu': 'number', 'fft-factor': 'number', 'gradient-only': 'boolean', profile: 'string', 'bulge-nu': 'number' }, USAGE);
    if (!parsed) return 0;
    const { opts } = parsed;
    const flags = parsed;
    const nSources = (opts.sources as number) ?? 500;
    const nQuadrants = (opts.quadrants as number) ?? 4;
    const repeats = (opts.repeats as number) ?? 5;
    const replicas = (opts.replicas as number) ?? 1;
    if (!Number.isInteger(replicas) || replicas < 1) throw new UserError(`--replicas must be an integer ≥ 1, got '${opts.replicas}'`);
    const tierOpt = (opts.tier as string) ?? '64';
    const tier = tierOpt === 'mixed' ? 'mixed' : Number(tierOpt);
    if (tier !== 'mixed' && ![64, 128, 256].includes(tier)) throw new UserError(`--tier must be 64, 128, 256 or mixed, got '${tierOpt}'`);
    if (!(nSources >= 1) || !(nQuadrants >= 1) || !(repeats >= 1)) throw new UserError('--sources, --quadrants and --repeats must be ≥ 1');
    const psfOversampling = (opts['psf-oversampling'] as number) ?? 1;
    if (!Number.isInteger(psfOversampling) || psfOversampling < 1) throw new UserError(`--psf-oversampling must be an integer ≥ 1, got '${opts['psf-oversampling']}'`);
    const aliasOpt = (opts['alias-orders'] as string) ?? 'auto';
    const aliasOrders = aliasOpt === 'auto' ? 'auto' : Number(aliasOpt);
    if (aliasOrders !== 'auto' && !(Number.isInteger(aliasOrders) && aliasOrders >= 0)) throw new UserError(`--alias-orders must be auto or an integer ≥ 0, got '${aliasOpt}'`);
    const spergelNu = opts['spergel-nu'] as number | undefined;
    if (spergelNu !== undefined && !Number.isFinite(spergelNu)) throw new UserError(`--spergel-nu must be a number, got '${opts['spergel-nu']}'`);
    const profileName = (opts.profile as string | undefined) ?? (spergelNu === undefined ? 'exponential' : 'spergel');
    const profile: GalaxyProfile | undefined = benchProfile(profileName, spergelNu, opts['bulge-nu'] as number | undefined);
    const fftFactor = (opts['fft-factor'] as number | undefined) ?? DEFAULT_FFT_FACTOR;
    if (!isFftFactor(fftFactor)) throw new UserError(`--fft-factor must be a power of two or 1.5 × one (1, 1.5, 2, …; FFT size = factor × stamp), got ${fftFactor}`);
    const [w, h] = ((opts.size as string) ?? '2048x2066').split('x').map(Number);
    if (!(w > 0 && h > 0)) throw new UserError(`--size must be WxH, got '${opts.size}'`);

    const acq = await acquireDevice({ adapter: flags.adapter, limits: flags.limits, quiet: !!opts.json });
    try {
      // refuse a scene that cannot fit before building it (issue 17 item 10)
      const maxGpuBytes = gpuBudgetBytes(acq) ?? defaultGpuBudget(acq.device.limits);
      const needs = syntheticSceneNeeds({ nSources, nQuadrants, width: w, height: h, tier, psfOversampling, aliasOrders, replicas, fftFactor });
      const sceneWhat = `the bench scene (${nSources} sources × ${nQuadrants} quadrants of ${w}×${h}, tier ${tier}: ${needs.pairs} pairs)`;
      if (needs.gpuAtLeast.total > maxGpuBytes) {
        throw new UserError(`${sceneWhat} needs at least ${formatBytes(needs.gpuAtLeast.total)} of GPU memory (PSF spectra ${formatBytes(needs.gpuAtLeast.psfSpectra)}, FFT work ${formatBytes(needs.gpuAtLeast.fftWork)}), more than the budget of ${formatBytes(maxGpuBytes)}${acq.software ? ' (half the host memory: a software adapter)' : ''}: refused before building it (use fewer --sources, --quadrants or a smaller --tier)`);
      }
      if (needs.hostBytes > 0.5 * totalmem()) {
        throw new UserError(`${sceneWhat} needs about ${formatBytes(needs.hostBytes)} of host memory, more than half of this machine's ${formatBytes(totalmem())}: refused before building it (use fewer --quadrants or a smaller --size)`);
      }
      const tScene = performance.now();
      const { set, truth } = makeSyntheticScene({ nSources, nQuadrants, width: w, height: h, tier, seed: (opts.seed as number) ?? 1, psfOversampling });
      const sceneMs = performance.now() - tScene;
      const eng = await ShearEngine.create(acq.device, set, { replicas, aliasOrders, maxGpuBytes, fftFactor, ...(profile ? { profile } : {}) });
      const params = ensureProfileParams(cloneParams(truth), profile);
      // warm-up (first calls create the read-back buffers and warm driver caches)
      await eng.evaluate(params);
      await eng.render(params);
      await eng.renderStampsOnly(params);
      const afterWarm = eng.stats;
      // --gradient-only (scripts/cpu-vs-numpy.sh): the stamps-only and forward timings are skipped (null)
      const gradientOnly = !!opts['gradient-only'];
      const renderTimes = gradientOnly ? [] : await timeIt(repeats, () => eng.renderStampsOnly(params));
      const forwardTimes = gradientOnly ? [] : await timeIt(repeats, () => eng.logLikelihood(params));
      // process CPU time (every thread: a software adapter's rasteriser threads included) per gradient: steadier than wall time on a shared machine
      const gradientCpu: number[] = [];
      const gradientTimes = await timeIt(repeats, async () => {
        const c0 = process.cpuUsage();
        await eng.evaluate(params);
        const c = process.cpuUsage(c0);
        gradientCpu.push((c.user + c.system) / 1000);
      });
      const batchList = Array.from({ length: replicas }, () => params);
      const batchTimes = replicas > 1 ? await timeIt(repeats, () => eng.evaluateMany(batchList)) : [];
      const st = eng.stats;
      const result = {
        adapter: acq.label,
        backend: acq.backend,
        featureLevel: acq.featureLevel,
        sources: nSources,
        quadrants: nQuadrants,
        tier,
        psfOversampling,
        fftFactor,
        fftSizes: st.fftSizes,
        aliasOrders: aliasOrdersFor(set, eng.options),
        profile: profileLabel(profile),
        quadrantSize: [w, h],
        pairs: st.pairs,
        batches: st.batches,
        repeats,
        renderMs: gradientOnly ? null : median(renderTimes),
        forwardMs: gradientOnly ? null : median(forwardTimes),
        gradientMs: median(gradientTimes),
        gradientMsPerPair: median(gradientTimes) / st.pairs,
        gradientCpuMs: median(gradientCpu),
        replicas,
        batchedGradientMs: replicas > 1 ? median(batchTimes) : null,
        batchedSpeedup: replicas > 1 ? (replicas * median(gradientTimes)) / median(batchTimes) : null,
        compileMs: st.compileMs,
        buildMs: st.buildMs,
        pipelinesAfterWarmup: st.pipelinesCreated - afterWarm.pipelinesCreated,
        buffersAfterWarmup: st.buffersCreated - afterWarm.buffersCreated,
        peakGpuBytes: st.peakGpuBytes,
        gpuBytesPerPair: st.peakGpuBytes / st.pairs,
        sceneBuildCpuMs: sceneMs,
        samples: { renderMs: renderTimes, forwardMs: forwardTimes, gradientMs: gradientTimes, batchedGradientMs: batchTimes },
      };
      eng.destroy();
      if (opts.json) console.log(JSON.stringify(result));
      else {
        const f = (x: number) => x.toFixed(x < 10 ? 2 : 1);
        console.log(`adapter        ${result.adapter} (${result.backend}, ${result.featureLevel})`);
        console.log(`scene          ${nSources} sources × ${nQuadrants} quadrants (${w}×${h}), tier ${tier}: ${st.pairs} pairs in ${st.batches} batches; PSF q=${psfOversampling}, ${result.aliasOrders} alias order(s), ${result.profile}`);
        if (result.renderMs !== null) console.log(`stamps only    ${f(result.renderMs)} ms (median of ${repeats})`);
        if (result.forwardMs !== null) console.log(`forward logL   ${f(result.forwardMs)} ms`);
        console.log(`gradient       ${f(result.gradientMs)} ms   (${f(result.gradientMsPerPair * 1000)} µs per pair)`);
        if (replicas > 1) console.log(`${replicas} replicas     ${f(result.batchedGradientMs!)} ms for ${replicas} gradients in one call (${result.batchedSpeedup!.toFixed(2)}× the throughput of ${replicas} separate calls)`);
        console.log(`compile        ${f(result.compileMs)} ms for ${st.pipelinesCreated} pipelines; build ${f(result.buildMs)} ms`);
        console.log(`after warm-up  ${result.pipelinesAfterWarmup} pipelines, ${result.buffersAfterWarmup} buffers created`);
        console.log(`peak GPU bytes ${(result.peakGpuBytes / 2 ** 20).toFixed(1)} MiB (${(result.gpuBytesPerPair / 1024).toFixed(1)} KiB per pair)`);
      }
      return result.pipelinesAfterWarmup === 0 ? 0 : 1;
    } finally {
      acq.release();
    }
  },
};

export default bench;
