/** MER catalogs: columns, SHINE's selection, hlr, µJy → ADU, initial ellipticities. */
export * from './mer.ts';
export { readMerCatalog } from './read.ts';
