/**
 * Errors meant for the user: a clear one-line message naming the file, HDU, key or config field.
 * The CLI prints `message` without a stack trace (cli/command.ts checks `userFacing`).
 */
export interface ErrorContext {
  file?: string;
  hdu?: string | number;
  key?: string;
  field?: string;
}

export class ShineError extends Error {
  readonly userFacing = true;
  readonly context: ErrorContext;
  constructor(message: string, context: ErrorContext = {}) {
    const where = [
      context.file !== undefined ? `file ${context.file}` : '',
      context.hdu !== undefined ? `HDU ${context.hdu}` : '',
      context.key !== undefined ? `key ${context.key}` : '',
      context.field !== undefined ? `field ${context.field}` : '',
    ].filter(Boolean);
    super(where.length ? `${where.join(', ')}: ${message}` : message);
    this.name = 'ShineError';
    this.context = context;
  }
}

/** Bad input data (files, headers, catalogs). */
export class DataError extends ShineError {
  override name = 'DataError';
}

/** Invalid parameters or an inconsistent scene, caught before any GPU dispatch. */
export class SceneError extends ShineError {
  override name = 'SceneError';
}
