/**
 * FITS header cards: parsing (80-character cards, CONTINUE long strings, HIERARCH) and the
 * Header object, plus card formatting for the writer.
 */
import { DataError } from '../../errors.ts';

export const BLOCK = 2880;
export const CARD = 80;

/** A header value: strings, numbers (integers beyond 2^53 as bigint), logicals, or null (undefined value). */
export type HeaderValue = string | number | bigint | boolean | null;

export interface HeaderCard {
  /** Keyword, upper case (for HIERARCH cards the part after `HIERARCH `, spaces kept single). */
  key: string;
  /** Parsed value; undefined for commentary cards (COMMENT, HISTORY, blank keyword). */
  value?: HeaderValue;
  comment?: string;
  /** The raw 80-character card image(s); more than one for a long string continued with CONTINUE. */
  raw: string[];
}

/** Where a header came from, for error messages. */
export interface HeaderContext {
  file?: string;
  hdu?: string | number;
}

const COMMENTARY = new Set(['COMMENT', 'HISTORY', '']);

const INT_RE = /^[+-]?\d+$/;
const FLOAT_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[EeDd][+-]?\d+)?$/;

/** Parses a value field (the text after `= `). Returns the value, comment and whether a string ended with `&`. */
function parseValueField(
  text: string,
  ctx: HeaderContext,
  key: string,
): { value: HeaderValue; comment?: string; isString: boolean } {
  let i = 0;
  while (i < text.length && text[i] === ' ') i++;
  if (i >= text.length) return { value: null, isString: false };
  if (text[i] === "'") {
    let s = '';
    let j = i + 1;
    let closed = false;
    while (j < text.length) {
      const ch = text[j];
      if (ch === "'") {
        if (text[j + 1] === "'") {
          s += "'";
          j += 2;
          continue;
        }
        // A closing quote is followed by blanks, a comment or the end of the card. A lone quote
        // followed by anything else is malformed; like astropy we keep it as a literal quote.
        if (!/^ *(\/|$)/.test(text.slice(j + 1))) {
          s += "'";
          j++;
          continue;
        }
        closed = true;
        j++;
        break;
      }
      s += ch;
      j++;
    }
    if (!closed) throw new DataError(`unterminated string value`, { ...ctx, key });
    // trailing spaces are not significant; leading spaces are
    s = s.replace(/ +$/, '');
    const rest = text.slice(j);
    const slash = rest.indexOf('/');
    const comment = slash >= 0 ? rest.slice(slash + 1).trim() : undefined;
    return { value: s, comment, isString: true };
  }
  const slash = text.indexOf('/', i);
  const field = (slash >= 0 ? text.slice(i, slash) : text.slice(i)).trim();
  const comment = slash >= 0 ? text.slice(slash + 1).trim() : undefined;
  if (field === '') return { value: null, comment, isString: false };
  if (field === 'T') return { value: true, comment, isString: false };
  if (field === 'F') return { value: false, comment, isString: false };
  if (INT_RE.test(field)) {
    const n = Number(field);
    if (Number.isSafeInteger(n)) return { value: n, comment, isString: false };
    return { value: BigInt(field), comment, isString: false };
  }
  if (FLOAT_RE.test(field)) {
    return { value: Number(field.replace(/[Dd]/, 'E')), comment, isString: false };
  }
  if (/^\(.*\)$/.test(field)) {
    // complex value: kept as its text
    return { value: field, comment, isString: false };
  }
  throw new DataError(`unparsable value '${field}'`, { ...ctx, key });
}

/**
 * Splits a header byte block (ending with the END card) into cards. `bytes` holds whole cards;
 * non-printable or non-ASCII bytes are an error.
 */
export function parseCards(bytes: Uint8Array, ctx: HeaderContext): HeaderCard[] {
  const nCards = Math.floor(bytes.length / CARD);
  const cards: HeaderCard[] = [];
  let pendingLong: HeaderCard | null = null;
  for (let c = 0; c < nCards; c++) {
    const base = c * CARD;
    let raw = '';
    for (let k = 0; k < CARD; k++) {
      const b = bytes[base + k];
      if (b < 0x20 || b > 0x7e) {
        throw new DataError(
          `non-ASCII or control byte 0x${b.toString(16).padStart(2, '0')} in header card ${c + 1}`,
          { ...ctx, key: decodeKey(bytes, base) },
        );
      }
      raw += String.fromCharCode(b);
    }
    let key = raw.slice(0, 8).trimEnd();
    if (key === 'END' && raw.slice(8).trim() === '') break;
    if (key !== '' && !/^[A-Z0-9_-]+$/.test(key) && !key.startsWith('HIERARCH')) {
      // astropy accepts lower case keywords with a warning; we do the same (normalised to upper case)
      if (!/^[A-Za-z0-9_-]+$/.test(key)) {
        throw new DataError(`illegal keyword '${key}' in header card ${c + 1}`, { ...ctx, key });
      }
      key = key.toUpperCase();
    }
    if (key === 'CONTINUE') {
      const { value, comment, isString } = parseValueField(raw.slice(8), ctx, 'CONTINUE');
      if (pendingLong && isString && typeof pendingLong.value === 'string') {
        const prev = pendingLong.value;
        pendingLong.value = prev.slice(0, -1) + (value as string);
        pendingLong.raw.push(raw);
        if (comment !== undefined) {
          pendingLong.comment = pendingLong.comment ? `${pendingLong.comment} ${comment}` : comment;
        }
        if (!(pendingLong.value as string).endsWith('&')) pendingLong = null;
        continue;
      }
      // a stray CONTINUE: kept as a commentary card
      cards.push({ key, raw: [raw], comment: raw.slice(8).trim() });
      pendingLong = null;
      continue;
    }
    pendingLong = null;
    if (key.startsWith('HIERARCH') && (raw.length === 8 || raw[8] === ' ')) {
      const body = raw.slice(8);
      const eq = body.indexOf('=');
      if (eq < 0) {
        cards.push({ key: 'HIERARCH', raw: [raw], comment: body.trim() });
        continue;
      }
      const hkey = body.slice(0, eq).trim().replace(/\s+/g, ' ').toUpperCase();
      const { value, comment } = parseValueField(body.slice(eq + 1), ctx, hkey);
      cards.push({ key: hkey, value, comment, raw: [raw] });
      continue;
    }
    if (COMMENTARY.has(key) || raw.slice(8, 10) !== '= ') {
      cards.push({ key, raw: [raw], comment: raw.slice(8).trimEnd() });
      continue;
    }
    const { value, comment, isString } = parseValueField(raw.slice(10), ctx, key);
    const card: HeaderCard = { key, value, comment, raw: [raw] };
    cards.push(card);
    if (isString && typeof value === 'string' && value.endsWith('&')) pendingLong = card;
  }
  // a long string whose last piece still ends in '&' with no CONTINUE after it keeps the '&'
  return cards;
}

function decodeKey(bytes: Uint8Array, base: number): string {
  let s = '';
  for (let k = 0; k < 8; k++) {
    const b = bytes[base + k];
    s += b >= 0x20 && b <= 0x7e ? String.fromCharCode(b) : '?';
  }
  return s.trimEnd();
}

/** A parsed FITS header. Keys are case-insensitive (stored upper case); the first occurrence wins for `get`. */
export class Header {
  readonly cards: readonly HeaderCard[];
  readonly context: HeaderContext;
  private readonly index = new Map<string, HeaderCard>();

  constructor(cards: HeaderCard[], context: HeaderContext = {}) {
    this.cards = cards;
    this.context = context;
    for (const c of cards) {
      if (c.value === undefined) continue;
      if (!this.index.has(c.key)) this.index.set(c.key, c);
    }
  }

  /** The raw 80-character card images, in order (CONTINUE cards included). */
  get rawCards(): string[] {
    return this.cards.flatMap((c) => c.raw);
  }

  has(key: string): boolean {
    return this.index.has(key.toUpperCase());
  }

  /** Value of a keyword, or undefined when absent (null when present with an undefined value). */
  get(key: string): HeaderValue | undefined {
    return this.index.get(key.toUpperCase())?.value;
  }

  comment(key: string): string | undefined {
    return this.index.get(key.toUpperCase())?.comment;
  }

  /** Keywords holding values, in header order (each once). */
  keys(): string[] {
    return [...this.index.keys()];
  }

  /** All COMMENT (or HISTORY) texts. */
  commentary(kind: 'COMMENT' | 'HISTORY' = 'COMMENT'): string[] {
    return this.cards.filter((c) => c.key === kind).map((c) => (c.comment ?? '').trim());
  }

  private missing(key: string): never {
    throw new DataError('missing header keyword', { ...this.context, key: key.toUpperCase() });
  }

  /**
   * A numeric value. Accepts numbers and numeric strings (e.g. Euclid writes MAGZEROP as a
   * string). Throws DataError naming the file/HDU/key when missing (and no default) or not numeric.
   */
  getNumber(key: string, fallback?: number): number {
    const v = this.get(key);
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      this.missing(key);
    }
    if (typeof v === 'number') return v;
    if (typeof v === 'bigint') return Number(v);
    if (typeof v === 'string') {
      const t = v.trim();
      if (FLOAT_RE.test(t)) return Number(t.replace(/[Dd]/, 'E'));
    }
    throw new DataError(`expected a number, found ${JSON.stringify(String(v))}`, {
      ...this.context,
      key: key.toUpperCase(),
    });
  }

  /** An integer value (exact); throws DataError when missing, not an integer, or beyond 2^53. */
  getInt(key: string, fallback?: number): number {
    const v = this.get(key);
    if ((v === undefined || v === null) && fallback !== undefined) return fallback;
    const n = this.getNumber(key);
    if (!Number.isSafeInteger(n)) {
      throw new DataError(`expected an integer, found ${String(v)}`, { ...this.context, key: key.toUpperCase() });
    }
    return n;
  }

  getString(key: string, fallback?: string): string {
    const v = this.get(key);
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      this.missing(key);
    }
    if (typeof v === 'string') return v;
    throw new DataError(`expected a string, found ${String(v)}`, { ...this.context, key: key.toUpperCase() });
  }

  getBool(key: string, fallback?: boolean): boolean {
    const v = this.get(key);
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      this.missing(key);
    }
    if (typeof v === 'boolean') return v;
    throw new DataError(`expected a logical (T/F), found ${String(v)}`, {
      ...this.context,
      key: key.toUpperCase(),
    });
  }

  /** Plain object of keyword → value (first occurrence), for JSON output. bigint values become strings. */
  toJSON(): Record<string, string | number | boolean | null> {
    const o: Record<string, string | number | boolean | null> = {};
    for (const [k, c] of this.index) {
      const v = c.value as HeaderValue;
      o[k] = typeof v === 'bigint' ? v.toString() : v;
    }
    return o;
  }
}

// ---------------------------------------------------------------------------------------------
// Writing cards

/** A card to write: `{ key, value, comment }`, or a tuple `[key, value, comment?]`. */
export interface CardSpec {
  key: string;
  /** Omitted (or undefined) for COMMENT / HISTORY / blank commentary cards (text goes in `comment`). */
  value?: HeaderValue;
  comment?: string;
}
export type CardInput = CardSpec | [string, HeaderValue, string?] | HeaderCard;

export function normaliseCard(c: CardInput): CardSpec {
  if (Array.isArray(c)) return { key: c[0], value: c[1], comment: c[2] };
  return { key: c.key, value: c.value, comment: c.comment };
}

/** FITS text for a number: integers as integers, other values in shortest round-trip form with E exponent. */
export function formatNumber(v: number, key: string): string {
  if (!Number.isFinite(v)) {
    throw new DataError(`cannot write ${v} in a FITS header (NaN/Infinity are not allowed)`, { key });
  }
  if (Number.isInteger(v) && Math.abs(v) < 1e21) {
    return Object.is(v, -0) ? '0' : v.toFixed(0);
  }
  let s = String(v); // shortest representation that round-trips to the same float64
  if (s.includes('e')) {
    let [mant, exp] = s.split('e');
    if (!mant.includes('.')) mant += '.0';
    s = `${mant}E${exp}`;
  } else if (!s.includes('.')) {
    s += '.0';
  }
  return s;
}

function formatValue(v: HeaderValue, key: string): string {
  if (v === null) return '';
  if (typeof v === 'boolean') return (v ? 'T' : 'F').padStart(20);
  if (typeof v === 'bigint') return v.toString().padStart(20);
  if (typeof v === 'number') return formatNumber(v, key).padStart(20);
  throw new Error('unreachable');
}

function checkAscii(s: string, key: string): void {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) {
      throw new DataError(`header text must be printable ASCII (found code ${c})`, { key });
    }
  }
}

/** Formats one card (possibly several 80-char images for a long string). */
export function formatCard(spec: CardSpec): string[] {
  const key = spec.key.toUpperCase();
  checkAscii(key, key);
  if (spec.comment !== undefined) checkAscii(spec.comment, key);
  if (typeof spec.value === 'string') checkAscii(spec.value, key);
  if (spec.value === undefined) {
    // commentary card: split long text over several cards
    const text = spec.comment ?? '';
    const k = key.padEnd(8);
    if (key.length > 8) throw new DataError('commentary keyword longer than 8 characters', { key });
    const out: string[] = [];
    for (let i = 0; i === 0 || i < text.length; i += 72) out.push((k + text.slice(i, i + 72)).padEnd(CARD));
    return out;
  }
  const standard = key.length <= 8 && /^[A-Z0-9_-]*$/.test(key);
  if (!standard && !/^[A-Z0-9_\- ]+$/.test(key)) throw new DataError('illegal keyword', { key });
  const prefix = standard ? `${key.padEnd(8)}= ` : `HIERARCH ${key} = `;
  const v = spec.value;
  const comment = spec.comment;
  if (typeof v === 'string') {
    const esc = v.replace(/'/g, "''");
    const single = `'${esc.padEnd(8)}'`;
    if (prefix.length + single.length <= CARD) {
      return [withComment(prefix + single.padEnd(20), comment)];
    }
    if (!standard) throw new DataError('string value too long for a HIERARCH card', { key });
    // long string: pieces ending in '&', continued with CONTINUE cards (no '' pair is split)
    const out: string[] = [];
    let rest = esc;
    let first = true;
    while (rest.length > 0) {
      const head = first ? prefix : 'CONTINUE  ';
      const room = CARD - head.length - 2; // quotes
      let take: number;
      let piece: string;
      if (rest.length <= room) {
        take = rest.length;
        piece = rest;
      } else {
        take = room - 1; // leave room for '&'
        if (splitsQuotePair(rest, take)) take--;
        piece = rest.slice(0, take) + '&';
      }
      rest = rest.slice(take);
      out.push(`${head}'${piece}'`.padEnd(CARD));
      first = false;
    }
    if (comment) {
      const last = out[out.length - 1].trimEnd();
      if (last.length + 3 + comment.length <= CARD) out[out.length - 1] = withComment(last, comment);
      else out.push(withComment(`CONTINUE  ''`, comment));
    }
    return out;
  }
  return [withComment(prefix + formatValue(v, key), comment)];
}

/** true when cutting `s` at `n` would separate the two quotes of an escaped `''`. */
function splitsQuotePair(s: string, n: number): boolean {
  // count consecutive quotes ending at n-1; an odd count means the last one pairs with s[n]
  let q = 0;
  for (let i = n - 1; i >= 0 && s[i] === "'"; i--) q++;
  return q % 2 === 1;
}

function withComment(card: string, comment: string | undefined): string {
  let s = card;
  if (comment) {
    const room = CARD - s.length - 3;
    if (room > 0) s += ` / ${comment.slice(0, room)}`;
  }
  if (s.length > CARD) throw new DataError('header card longer than 80 characters', { key: card.slice(0, 8).trim() });
  return s.padEnd(CARD);
}
