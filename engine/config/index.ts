/** SHINE configuration: zod schema (./schema.ts), YAML parsing and validation (./parse.ts). See docs/config.md. */
export * from './schema.ts';
export { parseConfig, defaultConfig, minimumMarginArcsec, ConfigError, CONFIG_ALIASES, type ConfigIssue, type ParseOptions } from './parse.ts';
export * from './paths.ts';
export * from './fit-settings.ts';
