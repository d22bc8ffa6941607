/**
 * User-facing errors. Every failure the user sees is one `error:` line built from a
 * {@link KanikoError}: what failed, on what (file:line, image reference, registry), and what to do.
 * @module
 */

/** Exit code for a failed build or command. */
export const EXIT_FAILURE = 1;
/** Exit code for bad usage: unknown flag, bad value. */
export const EXIT_USAGE = 2;

/** Options for {@link KanikoError}. */
export interface KanikoErrorOptions {
  /** Process exit code; defaults to {@link EXIT_FAILURE}. */
  exitCode?: number;
  /** What the user can do about it; appended to the message after `: `. */
  hint?: string;
  /** The underlying error, shown only at debug verbosity. */
  cause?: unknown;
  /** A machine-readable code, e.g. an OCI error code such as `MANIFEST_UNKNOWN`. */
  code?: string;
}

/** An error meant for the user: its message is one line, with no secret in it. */
export class KanikoError extends Error {
  /** Process exit code for this failure. */
  readonly exitCode: number;
  /** What the user can do about it. */
  readonly hint?: string;
  /** A machine-readable code, when there is one. */
  readonly code?: string;

  constructor(message: string, options: KanikoErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = "KanikoError";
    this.exitCode = options.exitCode ?? EXIT_FAILURE;
    this.hint = options.hint;
    this.code = options.code;
  }
}

/** Bad usage: unknown flag, malformed value. Exit code 2. */
export class UsageError extends KanikoError {
  constructor(message: string, options: Omit<KanikoErrorOptions, "exitCode"> = {}) {
    super(message, { ...options, exitCode: EXIT_USAGE });
    this.name = "UsageError";
  }
}

/** Renders any thrown value as the single line the user sees (without the `error: ` prefix). */
export function describeError(err: unknown): string {
  if (err instanceof KanikoError) {
    return oneLine(err.hint ? `${err.message}; ${err.hint}` : err.message);
  }
  if (err instanceof Error) return oneLine(err.message || err.name);
  return oneLine(String(err));
}

/** The exit code a thrown value should end the process with. */
export function exitCodeOf(err: unknown): number {
  return err instanceof KanikoError ? err.exitCode : EXIT_FAILURE;
}

/** Collapses whitespace runs (newlines included) so a message stays on one line. */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}
