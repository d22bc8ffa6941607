/** Shared helpers of the CLI parsing tests. */
import assert from "node:assert/strict";
import { UsageError } from "../../lib/errors.ts";
import { type Invocation, parseInvocation } from "../../lib/cli/invocation.ts";

/** An environment for the parser. */
export type Env = Record<string, string>;
/** The invocation of one command. */
export type Of<C extends Invocation["command"]> = Invocation & { command: C };

/** Parses `argv` with `env` as the whole environment. */
export function parse(argv: string[], env: Env = {}): Invocation {
  return parseInvocation(argv, { env: (name) => env[name] });
}

/** Parses a build command line. */
export function build(argv: string[], env: Env = {}): Of<"build"> {
  const invocation = parse(argv, env);
  assert.equal(invocation.command, "build");
  return invocation as Of<"build">;
}

/** Asserts that parsing fails with a one-line usage error (exit 2) matching `pattern`. */
export function usage(argv: string[], pattern: RegExp, env: Env = {}): UsageError {
  let caught: unknown;
  try {
    parse(argv, env);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof UsageError, `expected a UsageError for ${argv.join(" ")}`);
  assert.equal(caught.exitCode, 2);
  const line = caught.hint ? `${caught.message}; ${caught.hint}` : caught.message;
  assert.match(line, pattern);
  assert.ok(!line.includes("\n"), line);
  return caught;
}
