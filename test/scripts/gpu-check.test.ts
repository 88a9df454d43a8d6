/**
 * scripts/gpu-check.sh --quick on this machine's adapter (llvmpipe without a GPU), from
 * node_modules (--from-source: no pack needed): every JSON file it writes parses and holds the
 * fields the device run will be read for, the `bench --stages` steps on the ci preset (MAP and
 * NUTS with 4 chains) included. No timing is asserted.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorLine, judgeStep, lastJsonObject } from '../../scripts/gpu-summary.ts';

const REPO = resolve(import.meta.dirname, '..', '..');
const BENCH_STEPS = ['bench-250x4', 'bench-1000x4', 'bench-2500x6-mixed', 'bench-1000x4-replicas8', 'bench-1000x4-psf3'];
const STAGE_STEPS = ['stages-map', 'stages-nuts'];
const STAGES = ['dataLoad', 'sceneBuild', 'compile', 'gradientStep', 'fit'];

describe('scripts/gpu-check.sh --quick', () => {
  let out = '';
  let code: number | null = null;
  let stdout = '';
  let stderr = '';

  beforeAll(async () => {
    out = mkdtempSync(join(tmpdir(), 'gpu-check-test-'));
    await new Promise<void>((done) => {
      execFile(
        'bash',
        ['scripts/gpu-check.sh', '--quick', '--from-source', '--repeats', '1', '--out', out],
        { cwd: REPO, timeout: 520_000, maxBuffer: 16 * 2 ** 20, env: { ...process.env, SHINE_GPU_RUN: join(out, 'run') } },
        (err, so, se) => {
          code = err ? ((err as { code?: number }).code ?? 1) : 0;
          stdout = so;
          stderr = se;
          done();
        },
      );
    });
  }, 540_000);

  afterAll(() => {
    if (out) rmSync(out, { recursive: true, force: true });
  });

  it('exits 0 and prints the summary table', () => {
    expect(code, `${stdout}\n${stderr}`).toBe(0);
    expect(stdout).toMatch(/^step\s+scene\s+pairs\s+grad ms\s+build ms\s+peak MiB\s+wall s\s+result$/m);
    expect(stdout).toContain('ALL PASSED');
  });

  it('writes at most 8 files (what the device tool brings back), all JSON parsing', () => {
    const files = readdirSync(out).filter((f) => f !== 'run');
    expect(files.sort()).toEqual(['bench.json', 'doctor.json', 'gpu-check.log', 'summary.json']);
    for (const f of files.filter((x) => x.endsWith('.json'))) expect(() => JSON.parse(readFileSync(join(out, f), 'utf8')), f).not.toThrow();
  });

  it('doctor.json: an adapter and every kernel check passed', () => {
    const d = JSON.parse(readFileSync(join(out, 'doctor.json'), 'utf8'));
    expect(d.pass).toBe(true);
    expect(typeof d.adapter).toBe('string');
    expect(d.checks.length).toBeGreaterThan(0);
    for (const c of d.checks) expect(c.pass, c.name).toBe(true);
  });

  it('bench.json: every step with pairs, a gradient median > 0 and no pipelines after warm-up', () => {
    const b = JSON.parse(readFileSync(join(out, 'bench.json'), 'utf8'));
    expect(Object.keys(b.steps).sort()).toEqual([...BENCH_STEPS, ...STAGE_STEPS].sort());
    for (const name of BENCH_STEPS) {
      const r = b.steps[name];
      expect(r.pipelinesAfterWarmup, name).toBe(0);
      expect(r.gradientMs, name).toBeGreaterThan(0);
      expect(r.pairs, name).toBeGreaterThan(0);
      expect(r.peakGpuBytes, name).toBeGreaterThan(0);
      expect(r.buildMs, name).toBeGreaterThan(0);
    }
    expect(b.steps['bench-2500x6-mixed'].tier).toBe('mixed');
    expect(b.steps['bench-1000x4-replicas8'].replicas).toBeGreaterThan(1);
    expect(b.steps['bench-1000x4-replicas8'].batchedGradientMs).toBeGreaterThan(0);
    expect(b.steps['bench-1000x4-psf3'].psfOversampling).toBe(3);
    // bench --stages: the five stages, no pipeline after warm-up, NUTS with 4 chains (4 parameter sets per fit evaluation)
    for (const name of STAGE_STEPS) {
      const r = b.steps[name];
      for (const k of STAGES) expect(r.stagesMs[k], `${name} ${k}`).toBeGreaterThan(0);
      expect(r.pipelinesAfterWarmup, name).toBe(0);
      expect(r.pairs, name).toBeGreaterThan(0);
      expect(r.gpuBytes.measuredPeak, name).toBe(r.gpuBytes.plannedPeak);
    }
    expect(b.steps['stages-map'].method).toBe('map');
    expect(b.steps['stages-nuts'].method).toBe('nuts');
    expect(b.steps['stages-nuts'].gpuBytes.replicas).toBeGreaterThan(0);
    expect(b.steps['stages-nuts'].fit).toHaveProperty('msPerEssG1');
    expect(b.steps['bench-1000x4-psf3'].aliasOrders).toBe(1);
  });

  it('summary.json: the adapter, each step judged, the stages steps with their five stages', () => {
    const s = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    expect(s.pass).toBe(true);
    expect(typeof s.adapter.label).toBe('string');
    expect(s.meta.mode).toBe('node_modules');
    const byName = Object.fromEntries(s.steps.map((x: { name: string }) => [x.name, x]));
    expect(byName.doctor.status).toBe('pass');
    expect(byName.doctor.checksPassed).toBe(byName.doctor.checksRun);
    for (const name of BENCH_STEPS) {
      expect(byName[name].status, name).toBe('pass');
      expect(byName[name].gradientMs, name).toBeGreaterThan(0);
      expect(byName[name].peakGpuMiB, name).toBeGreaterThan(0);
      expect(byName[name].pipelinesAfterWarmup, name).toBe(0);
    }
    for (const name of ['setup-simulate', 'setup-prepare', ...STAGE_STEPS]) expect(byName[name].status, name).toBe('pass');
    for (const name of STAGE_STEPS) {
      for (const k of STAGES) expect(byName[name].stagesMs[k], `${name} ${k}`).toBeGreaterThan(0);
      expect(byName[name].gradientMs).toBe(byName[name].stagesMs.gradientStep);
    }
    expect(stdout).toMatch(/^stages-nuts: load .* gradient .* fit .* ms/m);
  });
});

describe('gpu-summary judgement', () => {
  const line = { name: 'bench-x', kind: 'ran' as const, rc: 0, wallS: 3, timeoutS: 60, reason: '', args: 'bench --json' };
  const ok = { adapter: 'a', pairs: 10, gradientMs: 1.5, pipelinesAfterWarmup: 0, peakGpuBytes: 2 ** 20, buildMs: 5 };

  it('takes the last JSON line of stdout', () => {
    expect(lastJsonObject('noise\n{"a":1}\n{"b":2}\n')).toEqual({ b: 2 });
    expect(lastJsonObject('no json here')).toBeNull();
  });

  it('passes a clean bench, fails pipelines after warm-up, a timeout, and missing output', () => {
    expect(judgeStep(line, ok, '').status).toBe('pass');
    expect(judgeStep({ ...line, rc: 1 }, { ...ok, pipelinesAfterWarmup: 2 }, '').status).toBe('fail');
    expect(judgeStep(line, { ...ok, gradientMs: 0 }, '').status).toBe('fail');
    const t = judgeStep({ ...line, rc: 124 }, null, 'killed');
    expect(t.status).toBe('timeout');
    expect(t.reason).toContain('60 s');
    expect(judgeStep(line, null, 'DeviceError: no adapter\n').reason).toContain('DeviceError: no adapter');
  });

  it("picks the CLI's error line out of stderr, not Dawn's warnings", () => {
    const err = 'Warning: maxDynamicUniformBuffersPerPipelineLayout reduced\nshine: adapter \'vulkan\' is not available (node): Dawn found no vulkan adapter\nOn Debian/Ubuntu install …\n';
    expect(errorLine(err)).toMatch(/^shine: adapter 'vulkan' is not available/);
    expect(errorLine('Warning: x\nsomething else\nWarning: y\n')).toBe('something else');
  });

  it('judges set-up steps by their exit code and stages steps by their five stages', () => {
    const setup = { ...line, name: 'setup-simulate' };
    expect(judgeStep(setup, null, '').status).toBe('pass');
    expect(judgeStep({ ...setup, rc: 1 }, null, 'shine: no such preset\n').reason).toContain('no such preset');
    const st = { ...line, name: 'stages-map' };
    const stagesMs = { dataLoad: 1, sceneBuild: 2, compile: 3, gradientStep: 4, fit: 5 };
    const good = { adapter: {}, pairs: 8, stagesMs, pipelinesAfterWarmup: 0, gpuBytes: { measuredPeak: 2 ** 20 }, method: 'map', fit: {} };
    const j = judgeStep(st, good, '');
    expect(j.status).toBe('pass');
    expect(j.buildMs).toBe(5);
    expect(j.gradientMsPerPair).toBe(0.5);
    expect(judgeStep(st, { ...good, pipelinesAfterWarmup: 1 }, '').status).toBe('fail');
    expect(judgeStep(st, { ...good, stagesMs: { ...stagesMs, fit: undefined } }, '').reason).toContain('stagesMs');
  });

  it('fails a doctor run with a failed or no kernel check', () => {
    const d = { ...line, name: 'doctor' };
    expect(judgeStep(d, { adapter: 'a', pass: true, checks: [{ name: 'x', pass: true }] }, '').status).toBe('pass');
    expect(judgeStep({ ...d, rc: 1 }, { adapter: 'a', pass: false, checks: [{ name: 'x', pass: false }] }, '').reason).toContain('x');
    expect(judgeStep(d, { adapter: 'a', pass: true, checks: [] }, '').status).toBe('fail');
  });
});
