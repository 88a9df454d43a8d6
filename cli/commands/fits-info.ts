/**
 * `shine fits-info FILE [--json]`: lists the HDUs of a FITS file (local path, http(s) URL, .fits.gz):
 * index, EXTNAME, type, and the image shape or the table columns with their TFORMs.
 * Reads only the headers (the data of a multi-GB file is skipped).
 */
import { UserError, type Command } from '../command.ts';
import { openFits } from '../../platform/node/files.ts';
import { parseTform } from '../../engine/data/fits/table.ts';
import type { FitsFile, HduInfo } from '../../engine/data/fits/file.ts';

interface HduSummary {
  index: number;
  name: string;
  extver?: number;
  type: string;
  bitpix: number;
  shape?: number[];
  rows?: number;
  columns?: Array<{ name: string; format: string; unit?: string }>;
  dataOffset: number;
  dataSize: number;
}

function summarise(f: FitsFile, h: HduInfo): HduSummary {
  const s: HduSummary = {
    index: h.index,
    name: h.name,
    type: h.type,
    bitpix: h.bitpix,
    dataOffset: h.dataOffset,
    dataSize: h.dataSize,
  };
  if (h.extver !== undefined) s.extver = h.extver;
  if (h.type === 'bintable' || h.type === 'table') {
    const hdr = f.header(h.index);
    const n = hdr.getInt('TFIELDS', 0);
    s.rows = h.naxis[1] ?? 0;
    s.columns = [];
    for (let i = 1; i <= n; i++) {
      const format = hdr.getString(`TFORM${i}`);
      if (h.type === 'bintable') parseTform(format, { file: f.name, hdu: h.index, key: `TFORM${i}` });
      const unit = hdr.get(`TUNIT${i}`);
      s.columns.push({
        name: String(hdr.get(`TTYPE${i}`) ?? `COL${i}`).trim(),
        format: format.trim(),
        ...(typeof unit === 'string' && unit ? { unit } : {}),
      });
    }
  } else {
    s.shape = h.naxis.slice();
  }
  return s;
}

function text(file: string, list: HduSummary[], warnings: readonly string[]): string {
  const lines = [`${file}: ${list.length} HDU${list.length === 1 ? '' : 's'}`];
  const nameW = Math.max(7, ...list.map((s) => (s.name + (s.extver !== undefined ? `,${s.extver}` : '')).length));
  lines.push(`${'No.'.padStart(4)}  ${'EXTNAME'.padEnd(nameW)}  ${'Type'.padEnd(8)}  Dimensions / columns`);
  for (const s of list) {
    const name = (s.name || (s.index === 0 ? 'PRIMARY' : '')) + (s.extver !== undefined ? `,${s.extver}` : '');
    let what: string;
    if (s.columns) {
      what = `${s.rows} rows × ${s.columns.length} columns: ${s.columns.map((c) => `${c.name} ${c.format}`).join(', ')}`;
    } else if (s.shape && s.shape.length) {
      what = `${s.shape.join(' × ')}  BITPIX ${s.bitpix}`;
    } else {
      what = '(no data)';
    }
    lines.push(`${String(s.index).padStart(4)}  ${name.padEnd(nameW)}  ${s.type.padEnd(8)}  ${what}`);
  }
  for (const w of warnings) lines.push(`warning: ${w}`);
  return lines.join('\n');
}

const command: Command = {
  summary: 'list the HDUs of a FITS file (EXTNAME, type, shape or table columns)',
  async run(argv) {
    const args = argv.filter((a) => a !== '--json');
    const json = argv.includes('--json');
    if (args.includes('--help') || args.includes('-h')) {
      console.log('usage: shine fits-info FILE [--json]\n  FILE: a .fits or .fits.gz path, or an http(s) URL');
      return 0;
    }
    const unknown = args.filter((a) => a.startsWith('-'));
    if (unknown.length) throw new UserError(`fits-info: unknown option ${unknown[0]} (usage: shine fits-info FILE [--json])`);
    if (args.length !== 1) throw new UserError('usage: shine fits-info FILE [--json]');
    const file = args[0];
    const f = await openFits(file, { headersOnly: true });
    try {
      const list = f.hdus.map((h) => summarise(f, h));
      if (json) console.log(JSON.stringify({ file, hdus: list, warnings: f.warnings }, null, 2));
      else console.log(text(file, list, f.warnings));
      return 0;
    } finally {
      await f.close();
    }
  },
};

export default command;
