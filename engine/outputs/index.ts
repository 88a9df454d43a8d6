/**
 * Per-sub-tile output products (docs/outputs.md): bytes out, no file
 * system (platform/node/outputs.ts writes them atomically and checks completeness).
 */
export { subtileOutputNames, checkSubtileId, PRODUCT_KINDS, type ProductKind, type SubtileId, type SubtileOutputNames } from './names.ts';
export { fitsDate, provenanceCards, asciiText, type Provenance } from './provenance.ts';
export {
  shearTable,
  readShearRow,
  checkShearTable,
  SHEAR_CATALOG_COLUMNS,
  SHEAR_EXTRA_COLUMNS,
  SHEAR_COLUMNS,
  SHEAR_EXTNAME,
  INFERENCE_METHODS,
  type InferenceMethod,
  type SubtileShear,
  type ShearColumnInfo,
} from './shear.ts';
export { paramsTable, checkParamsTable, PARAMS_COLUMNS, PARAMS_EXTNAME, MARGIN_EXTNAME, SOURCE_PARAMS, type SourceParam, type SourceParamsColumns, type ParamsColumnInfo } from './params.ts';
export {
  metadataYaml,
  parseMetadataYaml,
  checkMetadataText,
  SubtileMetadataSchema,
  METADATA_FORMAT,
  METADATA_VERSION,
  type SubtileMetadata,
  type MetadataQuadrant,
} from './metadata.ts';
export {
  diagnosticsPng,
  renderDiagnostics,
  diagnosticsTitle,
  DEFAULT_DIAGNOSTICS_OPTIONS,
  type DiagnosticQuadrant,
  type DiagnosticsInput,
  type DiagnosticsOptions,
  type DiagnosticsImage,
  type QuadrantLayout,
} from './diagnostics.ts';
export { checkProductBytes, checkPngBytes } from './validate.ts';
export { GLYPHS, GLYPH_ALIASES, MISSING_GLYPH, GLYPH_WIDTH, GLYPH_HEIGHT, glyph } from './font.ts';
