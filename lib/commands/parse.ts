/**
 * `parse --dockerfile F [--build-arg K=V]… [--target T] [--platform P] [--raw]`: prints a
 * Dockerfile as JSON (see the command-line contract). With `--raw`, the syntax tree of any
 * syntactically valid file; without it, the build's meaning (stages, expanded arguments), which
 * needs a file that can be built.
 * @module
 */

import type { ParseCommandOptions } from "../cli/options.ts";
import type { Dockerfile } from "../dockerfile/ast.ts";
import { validateDockerfile } from "../dockerfile/instruction_args.ts";
import { parseDockerfile } from "../dockerfile/parser.ts";
import { describeBuild } from "../dockerfile/plan.ts";
import { KanikoError } from "../errors.ts";

/**
 * Runs the parse command (`dockerfile` may be `-` for standard input): writes the JSON and a
 * newline to stdout.
 */
export async function parseCommand(opts: ParseCommandOptions): Promise<void> {
  const { text, file } = await readDockerfile(opts.dockerfile);
  const df = parseDockerfile(text, { file });
  if (opts.raw) {
    await writeStdout(JSON.stringify(rawTree(df), null, 2) + "\n");
    return;
  }
  validateDockerfile(df, { file });
  const output = describeBuild(df, {
    buildArgs: opts.buildArgs,
    target: opts.target,
    platform: opts.platform,
    file,
  });
  await writeStdout(JSON.stringify(output, null, 2) + "\n");
}

/** The contract's `parse --raw` object: escape, directives, instructions, then warnings. */
function rawTree(df: Dockerfile): Dockerfile {
  return {
    escape: df.escape,
    directives: df.directives,
    instructions: df.instructions,
    warnings: df.warnings,
  };
}

/** Reads the Dockerfile (`-`: standard input) as UTF-8; a missing file is a one-line error. */
export async function readDockerfile(path: string): Promise<{ text: string; file: string }> {
  let bytes: Uint8Array;
  try {
    bytes = path === "-" ? await readAll(Deno.stdin.readable) : await Deno.readFile(path);
  } catch (err) {
    const reason = err instanceof Deno.errors.NotFound
      ? "no such file"
      : err instanceof Deno.errors.IsADirectory
      ? "it is a directory"
      : err instanceof Error
      ? err.message
      : String(err);
    throw new KanikoError(`cannot read Dockerfile ${path}: ${reason}`, { cause: err });
  }
  const text = new TextDecoder("utf-8").decode(bytes);
  return { text, file: path === "-" ? "Dockerfile" : path };
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function writeStdout(text: string): Promise<void> {
  const bytes = new TextEncoder().encode(text);
  for (let off = 0; off < bytes.length;) off += await Deno.stdout.write(bytes.subarray(off));
}
