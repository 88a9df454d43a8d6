/**
 * A lost GPU device (docs/plan.md "A lost device"). The loss is real: `device.destroy()` on a
 * device of its own, after which Dawn fails every call on it (buffer mapping rejects with an
 * AbortError that carries no message).
 *  - with `recoverDevice`, a loss at the 4th GPU call of a MAP fit rebuilds the engine on a new
 *    device and the fit ends exactly where the undisturbed fit on an untouched device ends
 *    (parameters, loss history, iterations), and the engine says so;
 *  - without it, the call fails at once with a GpuDeviceLostError naming the reason (not an empty
 *    AbortError, not a hang);
 *  - a device lost half-way through the build is replaced too;
 *  - a device that keeps being lost is given up after `maxDeviceRecoveries` new ones;
 *  - a short Stage 2 run of the ci simulation whose device is destroyed during MAP ends with the
 *    shear and parameters of an undisturbed run, with the loss among its warnings; without a
 *    replacement device it fails with the GpuDeviceLostError.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig } from '../../platform/node/config.ts';
import { openFits } from '../../platform/node/files.ts';
import { manifestFileName, parseManifest } from '../../engine/tiling/manifest.ts';
import { runSubtile } from '../../engine/subtile/run.ts';
import { CI_TILE, preparedCiSimulation } from '../helpers/ci-sim.ts';
import { expectSameMapFit } from '../helpers/same-map.ts';
import { ShearEngine } from '../../engine/gpu/render/engine.ts';
import { GpuDeviceLostError } from '../../engine/gpu/device-lost.ts';
import { GpuResources } from '../../engine/gpu/resources.ts';
import { makeTestScene } from '../../engine/reference/scene-builder.ts';
import { cloneParams } from '../../engine/scene/types.ts';
import { runMap } from '../../engine/infer/map.ts';
import { acquireNodeDevice, type AcquiredDevice } from '../../platform/node/device.ts';

const FIELDS = ['flux', 'hlr', 'e1', 'e2', 'dx', 'dy'] as const;
const hex = (a: ArrayLike<number>) => Buffer.from(Float64Array.from(a).buffer).toString('hex');

const acquired: AcquiredDevice[] = [];
/** A device of this test's own (it may be destroyed), released after the file. */
async function ownDevice(): Promise<GPUDevice> {
  const a = await acquireNodeDevice({ quiet: true });
  acquired.push(a);
  return a.device;
}
afterAll(() => {
  for (const a of acquired) a.release();
});

/** GpuResources that destroys its device at its `at`-th buffer allocation (counted from 1). */
class LoseAt extends GpuResources {
  count = 0;
  constructor(
    device: GPUDevice,
    readonly at: number,
  ) {
    super(device);
  }
  override buffer(label: string, size: number, usage: GPUBufferUsageFlags): GPUBuffer {
    if (++this.count === this.at) this.device.destroy();
    return super.buffer(label, size, usage);
  }
}

describe('lost device', () => {
  const sc = makeTestScene({ seed: 21, nSources: 4, quadrants: [{ width: 170, height: 170, rotationDeg: 0, name: 'a' }, { width: 170, height: 170, rotationDeg: 180, name: 'b' }], sourceTiers: [64], tiers: [64], fluxRange: [1500, 3000] });

  it('mid-fit: lost at the 4th GPU call, rebuilt on a new device; the MAP fit ends exactly where the undisturbed one does', async () => {
    const init = cloneParams(sc.params);
    init.g1 = 0;
    init.g2 = 0;
    for (let i = 0; i < init.flux.length; i++) init.flux[i] *= 1 + 0.1 * Math.cos(i);
    const opts = { catalog: { flux: sc.params.flux, hlr: sc.params.hlr }, lbfgs: { maxIterations: 15 } };
    const a = await ShearEngine.create(await ownDevice(), sc.set);
    const first = await ownDevice();
    const said: string[] = [];
    const asked: string[] = [];
    const b = await ShearEngine.create(first, sc.set, {
      onReplan: (m) => said.push(m),
      recoverDevice: async (lost) => {
        asked.push(lost.reason);
        return ownDevice();
      },
      faults: { loseDeviceAtCall: (i) => i === 3 },
    });
    try {
      const ma = await runMap(a, sc.set, {}, init, opts);
      const mb = await runMap(b, sc.set, {}, init, opts);
      console.log(said.join('\n'));
      expect(asked).toEqual(['destroyed']);
      expect(said).toHaveLength(1);
      expect(said[0]).toMatch(/^GPU device lost \(destroyed.*\) while evaluating: rebuilt the engine on a new device \(1 of at most 3\); the results do not change$/);
      expect(b.replans).toEqual(said);
      expect(b.activeDevice).not.toBe(first);
      expectSameMapFit(ma, mb);
    } finally {
      a.destroy();
      b.destroy();
    }
  });

  it('without recoverDevice: a GpuDeviceLostError naming the reason, at once', async () => {
    const device = await ownDevice();
    const eng = await ShearEngine.create(device, sc.set);
    try {
      const ok = await eng.evaluate(sc.params);
      expect(Number.isFinite(ok.logL)).toBe(true);
      device.destroy();
      const t0 = performance.now();
      const err = await eng.evaluate(sc.params).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(GpuDeviceLostError);
      expect((err as Error).message).toMatch(/^GPU device lost \(destroyed.*\) while evaluating: no result was produced; run again \(a re-run resumes\)$/);
      expect(performance.now() - t0).toBeLessThan(30_000);
    } finally {
      eng.destroy();
    }
  });

  it('during the build: a device lost half-way is replaced and the engine evaluates as one built undisturbed', async () => {
    const ref = await ShearEngine.create(await ownDevice(), sc.set);
    const want = await ref.evaluate(sc.params);
    const nBuffers = ref.stats.buffersCreated;
    ref.destroy();
    const said: string[] = [];
    const res = new LoseAt(await ownDevice(), Math.floor(nBuffers / 2));
    const eng = await ShearEngine.create(res.device, sc.set, { resources: res, onReplan: (m) => said.push(m), recoverDevice: () => ownDevice() });
    try {
      console.log(said.join('\n'));
      expect(said).toHaveLength(1);
      expect(said[0]).toMatch(/^GPU device lost \(destroyed.*\) while building the engine: rebuilt the engine on a new device/);
      expect(res.device).toBe(eng.activeDevice);
      const got = await eng.evaluate(sc.params);
      expect(got.logL).toBe(want.logL);
      for (const f of FIELDS) expect(hex(got.gradient[f])).toBe(hex(want.gradient[f]));
      expect(got.gradient.g1).toBe(want.gradient.g1);
    } finally {
      eng.destroy();
    }
  });

  it('a device lost again and again: given up after maxDeviceRecoveries new ones', async () => {
    const said: string[] = [];
    const eng = await ShearEngine.create(await ownDevice(), sc.set, { onReplan: (m) => said.push(m), recoverDevice: () => ownDevice(), maxDeviceRecoveries: 2, faults: { loseDeviceAtCall: () => true } });
    try {
      const err = await eng.evaluate(sc.params).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(GpuDeviceLostError);
      expect((err as Error).message).toMatch(/while evaluating, after 2 new device\(s\) already: giving up/);
      expect(said).toHaveLength(2);
    } finally {
      eng.destroy();
    }
  });
});

describe('lost device during a Stage 2 run (ci simulation)', () => {
  let cfgFile = '';
  let row = 1;
  let col = 1;
  beforeAll(async () => {
    ({ cfgFile, row, col } = await preparedCiSimulation(6, 'shine-lost-'));
  }, 300_000);

  it('destroyed during MAP: rebuilt on a new device, same shear and parameters, the loss in the warnings; without a replacement, a clear error', async () => {
    const cfg = await loadConfig(cfgFile);
    const short = { ...cfg, inference: { ...cfg.inference, map: { ...cfg.inference.map, max_iterations: 3, laplace: false } } };
    const file = join(cfg.distributed.scratch_dir, `tile_${CI_TILE}`, manifestFileName(CI_TILE, row, col));
    const manifest = async () => parseManifest(await readFile(file, 'utf8'), file);
    const files = { openFits: (p: string, o?: Parameters<typeof openFits>[1]) => openFits(p, o) };
    const a = await runSubtile(await ownDevice(), await manifest(), short, files, { images: false });
    const dev = await ownDevice();
    let lost = false;
    const loseInMap = (stage: string, done: number) => {
      if (stage === 'map' && done >= 1 && !lost) {
        lost = true;
        dev.destroy();
      }
    };
    const b = await runSubtile(dev, await manifest(), short, files, { images: false, onProgress: loseInMap, recoverDevice: () => ownDevice() });
    expect(lost).toBe(true);
    expect(a.status).toBe('ok');
    expect(b.status).toBe('ok');
    expect(b.g1).toBe(a.g1);
    expect(b.g2).toBe(a.g2);
    expect(b.iterations).toBe(a.iterations);
    const lostLines = b.warnings.filter((w) => /^GPU device lost \(destroyed.*\) while evaluating: rebuilt the engine on a new device/.test(w));
    console.log(`device-lost: ${lostLines.join('; ')}; g1 ${b.g1} vs ${a.g1}`);
    expect(lostLines).toHaveLength(1);
    expect(a.warnings.some((w) => /device lost/.test(w))).toBe(false);

    const dev2 = await ownDevice();
    lost = false;
    const err = await runSubtile(dev2, await manifest(), short, files, {
      images: false,
      onProgress: (stage, done) => {
        if (stage === 'map' && done >= 1 && !lost) {
          lost = true;
          dev2.destroy();
        }
      },
    }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(GpuDeviceLostError);
    expect((err as Error).message).toMatch(/^GPU device lost \(destroyed.*\) while evaluating: no result was produced/);
  }, 600_000);
});
