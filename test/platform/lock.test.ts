/**
 * The remote cache's index lock (platform/node/remote-cache.ts `indexLock`, issue 17 item 11): a
 * slow holder whose lock was broken as stale does not delete its successor's lock, and a waiter
 * never goes on without the lock (it waits, or fails after maxWaitMs).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { indexLock } from '../../platform/node/remote-cache.ts';
import { LockBusy } from '../../platform/node/lock.ts';

const dir = mkdtempSync(join(tmpdir(), 'shine-lock-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const tokenOf = (p: string) => JSON.parse(readFileSync(p, 'utf8')).token as string;

describe('cache index lock', () => {
  it('a slow holder broken as stale does not delete its successor’s lock; waiters wait for it', async () => {
    const path = join(dir, 'index.lock');
    const releaseA = await indexLock(path);
    const tokenA = tokenOf(path);
    // A is slow: its lock looks 60 s old, B breaks it and takes the lock
    const old = (Date.now() - 60_000) / 1000;
    utimesSync(path, old, old);
    const releaseB = await indexLock(path);
    const tokenB = tokenOf(path);
    expect(tokenB).not.toBe(tokenA);
    // C waits while B holds a fresh lock
    let cHas = false;
    const c = indexLock(path).then((rel) => {
      cHas = true;
      return rel;
    });
    // A finishes late: its release must leave B's lock alone
    expect(await releaseA()).toBe(false);
    expect(existsSync(path)).toBe(true);
    expect(tokenOf(path)).toBe(tokenB);
    await new Promise((r) => setTimeout(r, 300));
    expect(cHas).toBe(false); // C did not go on without the lock
    expect(await releaseB()).toBe(true);
    const releaseC = await c;
    expect(cHas).toBe(true);
    expect(tokenOf(path)).not.toBe(tokenB);
    expect(await releaseC()).toBe(true);
    expect(existsSync(path)).toBe(false);
  });

  it('a waiter gives up (an error) rather than going on without the lock', async () => {
    const path = join(dir, 'busy.lock');
    const release = await indexLock(path);
    const err = await indexLock(path, { maxWaitMs: 200 }).catch((e) => e);
    expect(err).toBeInstanceOf(LockBusy);
    expect((err as Error).message).toMatch(new RegExp(`waited \\d+ s for the lock .*busy\\.lock \\(held by pid ${process.pid} on `));
    expect(await release()).toBe(true);
  });

  it('a lock of a dead pid on this host is broken at once; an unreadable old one after staleMs', async () => {
    const path = join(dir, 'dead.lock');
    writeFileSync(path, JSON.stringify({ pid: 2 ** 22 + 12345, host: hostname(), started: new Date().toISOString(), token: 'dead' }));
    // broken at once, not for staleness: the lock is fresh, staleMs is an hour and no wait is allowed
    const release = await indexLock(path, { staleMs: 3_600_000, maxWaitMs: 0 });
    expect(tokenOf(path)).not.toBe('dead');
    await release();
    writeFileSync(path, '');
    const rel2 = await indexLock(path, { staleMs: 100 });
    expect(tokenOf(path)).toMatch(/^[0-9a-f]{24}$/);
    await rel2();
  });
});
