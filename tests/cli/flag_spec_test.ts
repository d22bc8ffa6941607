import assert from "node:assert/strict";
import { UsageError } from "../../lib/errors.ts";
import { BUILD_FLAGS } from "../../lib/cli/build_flags.ts";
import { COMMANDS } from "../../lib/cli/commands.ts";
import {
  assertUniqueFlags,
  collectFlags,
  type FlagSpec,
  normalizeArgs,
} from "../../lib/cli/flag_spec.ts";

const SPECS: FlagSpec[] = [
  { name: "cache", kind: "bool", help: "", group: "g", default: false },
  { name: "no-push", kind: "bool", help: "", group: "g", default: false },
  { name: "destination", short: "d", kind: "list", help: "", group: "g" },
  { name: "verbosity", short: "v", kind: "string", help: "", group: "g" },
  { name: "target", kind: "string", help: "", group: "g" },
];

Deno.test("normalizeArgs writes every boolean with an explicit value", () => {
  assert.deepEqual(normalizeArgs(["--cache", "--no-push=false", "--cache=TRUE"], SPECS), [
    "--cache=true",
    "--no-push=false",
    "--cache=true",
  ]);
});

Deno.test("normalizeArgs leaves values of value flags untouched", () => {
  assert.deepEqual(normalizeArgs(["--target", "true", "-d", "--cache", "--cache"], SPECS), [
    "--target",
    "true",
    "-d",
    "--cache",
    "--cache=true",
  ]);
});

Deno.test("normalizeArgs splits -v=debug but keeps -vdebug and stops at --", () => {
  assert.deepEqual(normalizeArgs(["-v=debug", "-vtrace", "--", "--cache"], SPECS), [
    "-v",
    "debug",
    "-v",
    "trace",
    "--",
    "--cache",
  ]);
});

Deno.test("normalizeArgs rejects bad boolean values and 'false' after a space", () => {
  assert.throws(() => normalizeArgs(["--cache=yes"], SPECS), /'yes' for --cache/);
  assert.throws(
    () => normalizeArgs(["--no-push", "false"], SPECS),
    (err: unknown) =>
      err instanceof UsageError && /write --no-push=false/.test(err.message) && err.exitCode === 2,
  );
});

Deno.test("normalizeArgs passes unknown flags through for the parser to report", () => {
  assert.deepEqual(normalizeArgs(["--nope=1", "x"], SPECS), ["--nope=1", "x"]);
});

Deno.test("collectFlags folds aliases and deprecated spellings into their target", () => {
  const specs: FlagSpec[] = [
    { name: "multi-platform", kind: "list", help: "", group: "g" },
    { name: "platform", kind: "list", help: "", group: "g", aliasOf: "multi-platform" },
    { name: "tar-path", kind: "string", help: "", group: "g" },
    {
      name: "tarPath",
      kind: "string",
      help: "",
      group: "g",
      aliasOf: "tar-path",
      deprecated: true,
    },
  ];
  const values: Record<string, unknown> = {
    "multi-platform": ["linux/amd64"],
    platform: ["linux/arm64"],
    tarPath: "/out.tar",
  };
  const parsed = collectFlags(specs, {
    value: (name) => values[name],
    source: (name) => name in values ? "cli" : undefined,
  });
  assert.deepEqual(parsed.values["multi-platform"], ["linux/amd64", "linux/arm64"]);
  assert.equal(parsed.values["tar-path"], "/out.tar");
  assert.ok(parsed.given.has("tar-path"));
  assert.deepEqual(parsed.warnings, ["Flag --tarPath is deprecated. Use: --tar-path"]);
});

Deno.test("flag tables have no duplicate names and every alias has a target", () => {
  for (const command of COMMANDS) {
    assertUniqueFlags(command.flags);
    const names = new Set(command.flags.map((flag) => flag.name));
    for (const flag of command.flags) {
      if (flag.aliasOf) assert.ok(names.has(flag.aliasOf), `${flag.name} -> ${flag.aliasOf}`);
    }
  }
  assert.ok(BUILD_FLAGS.length > 60);
});
