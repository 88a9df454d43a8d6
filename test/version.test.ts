import { it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { SHINE_VERSION } from '../engine/version.ts';

it('engine/version.ts matches package.json', () => {
  expect(SHINE_VERSION).toBe(JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version);
});
