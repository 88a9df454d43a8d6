declare module 'wgsl-preprocessor/wgsl-preprocessor.js' {
  /** Tagged template: `#if ${cond}` / `#elif` / `#else` / `#endif` on WGSL source. */
  export function wgsl(strings: TemplateStringsArray, ...values: unknown[]): string;
}
