/** Helpers shared by the Dockerfile parser tests. */
import assert from "node:assert/strict";
import type { Dockerfile, Instruction } from "../../lib/dockerfile/ast.ts";
import { dumpDockerfile } from "../../lib/dockerfile/dump.ts";
import { DockerfileError, parseDockerfile } from "../../lib/dockerfile/parser.ts";

/** A table case: a Dockerfile and what parsing it must give. */
export interface ParseCase {
  name: string;
  input: string;
  /** The expected BuildKit notation, one instruction a line (without the final newline). */
  dump?: string[];
  /** Expected fields of instruction `index` (default 0, negative counts from the end). */
  fields?: Partial<Instruction> & { index?: number };
  /** Expected `escape`/`directives`. */
  file?: Partial<Pick<Dockerfile, "escape" | "directives">>;
  /** The error message must match. */
  error?: RegExp;
  /** Any other check. */
  check?: (df: Dockerfile) => void;
}

/** Runs one {@link ParseCase}. */
export function runCase(c: ParseCase): void {
  if (c.error) {
    const err = parseError(c.input);
    assert.match(err.message, c.error);
    return;
  }
  const df = parseDockerfile(c.input);
  if (c.dump) assert.equal(dumpDockerfile(df), c.dump.map((l) => `${l}\n`).join(""));
  if (c.fields) {
    const { index = 0, ...want } = c.fields;
    const ins = df.instructions.at(index);
    assert.ok(ins, `no instruction ${index}`);
    for (const [key, value] of Object.entries(want)) {
      assert.deepEqual(ins[key as keyof Instruction], value, `${key} of instruction ${index}`);
    }
  }
  if (c.file) {
    for (const [key, value] of Object.entries(c.file)) {
      assert.deepEqual(df[key as keyof Dockerfile], value, key);
    }
  }
  c.check?.(df);
}

/** Parses `input`, which must fail with a one-line {@link DockerfileError}. */
export function parseError(input: string, file?: string): DockerfileError {
  try {
    parseDockerfile(input, { file });
  } catch (err) {
    assert.ok(err instanceof DockerfileError, `expected a DockerfileError, got ${err}`);
    assert.ok(!err.message.includes("\n"), err.message);
    assert.equal(err.exitCode, 1);
    return err;
  }
  assert.fail(`expected a syntax error for ${JSON.stringify(input.slice(0, 200))}`);
}

/** Registers one Deno test per case, named `prefix: case`. */
export function registerCases(prefix: string, cases: readonly ParseCase[]): void {
  const names = new Set<string>();
  for (const c of cases) {
    assert.ok(!names.has(c.name), `duplicate case name ${c.name}`);
    names.add(c.name);
    Deno.test(`${prefix}: ${c.name}`, () => runCase(c));
  }
}
