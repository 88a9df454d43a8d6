/** Stage 3: the unified shear catalog and per-tile parameter files (docs/assemble.md). */
export {
  collectSubtiles,
  shearCatalogFits,
  tileParamsFits,
  tileParamsName,
  summarize,
  CATALOG_EXTNAME,
  MISSING_EXTNAME,
  type AssembleReader,
  type AssembleInput,
  type AssembleResult,
  type AssembledSubtile,
  type SubtileProblem,
  type CatalogSummary,
} from './catalog.ts';
