/**
 * Provenance recorded in the FITS headers of the output tables. Everything is given by the caller
 * (no clock is read here), so the same inputs give byte-identical files.
 */
import type { CardInput } from '../data/fits/header.ts';

export interface Provenance {
  /** Software version, e.g. package.json's version (header SHINEVER). */
  softwareVersion: string;
  /** Creation time, ISO 8601 UTC ('2025-01-31T12:00:00' or with milliseconds / 'Z'); header DATE. */
  created: string;
  /** Hash of the configuration (header CFGHASH). */
  configHash?: string;
  /** Configuration file (header CONFIG). */
  configFile?: string;
  /** Sub-tile manifest file (header MANIFEST). */
  manifestFile?: string;
  /** Adapter / device label (header DEVICE). */
  device?: string;
  /** More cards appended as given. */
  cards?: CardInput[];
}

/** FITS DATE value: 'YYYY-MM-DDThh:mm:ss[.sss]' (a trailing 'Z' is dropped: FITS dates are UTC). */
export function fitsDate(created: string): string {
  return created.replace(/Z$/, '');
}

/** FITS header strings are printable ASCII: other characters (e.g. in paths) become '?'. */
export function asciiText(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?');
}

export function provenanceCards(p: Provenance): CardInput[] {
  const cards: CardInput[] = [
    { key: 'ORIGIN', value: 'shine-webgpu', comment: 'software that wrote this file' },
    { key: 'SHINEVER', value: asciiText(p.softwareVersion), comment: 'software version' },
    { key: 'DATE', value: asciiText(fitsDate(p.created)), comment: 'file creation time (UTC)' },
  ];
  if (p.configHash !== undefined) cards.push({ key: 'CFGHASH', value: asciiText(p.configHash), comment: 'configuration hash' });
  if (p.configFile !== undefined) cards.push({ key: 'CONFIG', value: asciiText(p.configFile), comment: 'configuration file' });
  if (p.manifestFile !== undefined) cards.push({ key: 'MANIFEST', value: asciiText(p.manifestFile), comment: 'sub-tile manifest' });
  if (p.device !== undefined) cards.push({ key: 'DEVICE', value: asciiText(p.device), comment: 'GPU adapter' });
  if (p.cards) cards.push(...p.cards);
  return cards;
}
