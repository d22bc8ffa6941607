/**
 * The process around a command: parse, configure the logger, dispatch, and turn every failure
 * into one `error:` line on stderr and an exit code (0 success, 1 failure, 2 bad usage, or the
 * build's own code). Also installs the handlers for unhandled rejections and signals.
 * @module
 */

import { describeError, exitCodeOf } from "../errors.ts";
import { addSecret, configureLog, log, redact } from "../log.ts";
import { interruptsClaimed } from "../interrupts.ts";
import { versionString } from "../version.ts";
import { HANDLERS, type Handlers } from "./handlers.ts";
import { type Invocation, parseInvocation, type ParseInvocationOptions } from "./invocation.ts";

const encoder = new TextEncoder();

/** Writes all of `text` to stdout, synchronously. */
export function writeStdout(text: string): void {
  writeAll(Deno.stdout, text);
}

function writeAll(stream: { writeSync(p: Uint8Array): number }, text: string): void {
  const bytes = encoder.encode(text);
  let offset = 0;
  while (offset < bytes.length) offset += stream.writeSync(bytes.subarray(offset));
}

/** Options of {@link reportError}. */
export interface ReportOptions {
  /** Print the stack (and causes) after the line: at `--verbosity=debug` or `trace`. */
  verbose?: boolean;
}

/**
 * Prints `error: <message>` as one line on stderr, credentials masked. The stack trace and the
 * chain of causes follow only when `verbose` is set.
 */
export function reportError(err: unknown, options: ReportOptions = {}): void {
  let text = `error: ${redact(describeError(err))}\n`;
  if (options.verbose) {
    for (let cause: unknown = err, depth = 0; cause && depth < 5; depth++) {
      if (cause instanceof Error && cause.stack) {
        text += `${depth === 0 ? "" : "caused by: "}${redact(cause.stack)}\n`;
      } else if (depth > 0) text += `caused by: ${redact(String(cause))}\n`;
      cause = cause instanceof Error ? cause.cause : undefined;
    }
  }
  try {
    writeAll(Deno.stderr, text);
  } catch {
    // Nothing left to report to.
  }
}

/** Options of {@link main}. */
export interface MainOptions extends ParseInvocationOptions {
  /** Replacement command implementations (tests). */
  handlers?: Partial<Handlers>;
}

/** Runs the command line `argv` (without the program name); resolves to the exit code. */
export async function main(argv: readonly string[], options: MainOptions = {}): Promise<number> {
  try {
    const invocation = parseInvocation(argv, options);
    if (invocation.command === "help") {
      writeStdout(invocation.text.endsWith("\n") ? invocation.text : `${invocation.text}\n`);
      return 0;
    }
    if (invocation.command === "version") {
      writeStdout(`${versionString()}\n`);
      return 0;
    }
    configureLog(invocation.log);
    for (const warning of invocation.warnings) log.warn(warning);
    if (log.enabled("debug")) log.debug(`${invocation.command} options`, describe(invocation));
    return await dispatch(invocation, { ...HANDLERS, ...options.handlers });
  } catch (err) {
    reportError(err, { verbose: log.enabled("debug") });
    return exitCodeOf(err);
  }
}

/** An invocation of a command that runs. */
type RunnableInvocation = Exclude<Invocation, { command: "help" | "version" }>;

async function dispatch(invocation: RunnableInvocation, handlers: Handlers): Promise<number> {
  switch (invocation.command) {
    case "build":
      if (invocation.options.cosignKeyPassword) addSecret(invocation.options.cosignKeyPassword);
      return await handlers.build(invocation.options);
    case "copy":
      await handlers.copy(invocation.src, invocation.dst, invocation.options);
      return 0;
    case "manifest":
      await handlers.manifest(invocation.ref, invocation.options);
      return 0;
    case "digest":
      await handlers.digest(invocation.ref, invocation.options);
      return 0;
    case "tags":
      await handlers.tags(invocation.repo, invocation.options);
      return 0;
    case "parse":
      await handlers.parse(invocation.options);
      return 0;
  }
}

/** The parsed command line as log fields, the cosign key password masked. */
function describe(invocation: RunnableInvocation): Record<string, unknown> {
  const { command: _command, log: _log, warnings: _warnings, ...fields } = invocation;
  if (fields.options && "cosignKeyPassword" in fields.options) {
    const password = fields.options.cosignKeyPassword;
    return { ...fields, options: { ...fields.options, cosignKeyPassword: password && "***" } };
  }
  return fields;
}

const SIGNALS: [Deno.Signal, number][] = [["SIGINT", 130], ["SIGTERM", 143]];

/**
 * Ends the process cleanly on what would otherwise escape: an unhandled rejection or uncaught
 * error (its `error:` line, exit code of the error), SIGINT (exit 130) and SIGTERM (exit 143) —
 * unless some code claimed interrupts (`lib/interrupts.ts`): the first signal is then theirs.
 */
export function installProcessHandlers(): void {
  const fatal = (err: unknown) => {
    reportError(err, { verbose: log.enabled("debug") });
    Deno.exit(exitCodeOf(err));
  };
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    fatal(event.reason);
  });
  globalThis.addEventListener("error", (event) => {
    event.preventDefault();
    fatal(event.error ?? event.message);
  });
  let pending = false;
  for (const [signal, code] of SIGNALS) {
    try {
      Deno.addSignalListener(signal, () => {
        if (interruptsClaimed() && !pending) {
          // The code that claimed it cleans up and ends with the right code; a second signal
          // ends the process at once.
          pending = true;
          log.warn(`${signal}: cleaning up (send it again to stop at once)`);
          return;
        }
        reportError(`interrupted by ${signal}`);
        Deno.exit(code);
      });
    } catch {
      // Signal not supported on this platform.
    }
  }
}
