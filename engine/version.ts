/** shine-webgpu's version (kept equal to package.json's by test/version.test.ts). */
export const SHINE_VERSION = '0.1.0';
