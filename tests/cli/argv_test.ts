/**
 * The command-line grammar of lib/cli/argv.ts: the corner cases of Kaniko's reading (and of the
 * one this CLI had while it used commander), which `node:util`'s `parseArgs` reads differently.
 */
import assert from "node:assert/strict";
import { type SplitArgs, splitArgs } from "../../lib/cli/argv.ts";
import { commandSpec } from "../../lib/cli/commands.ts";
import { type FlagSpec, normalizeArgs } from "../../lib/cli/flag_spec.ts";
import { commandHelp } from "../../lib/cli/help.ts";
import { build, type Of, parse, usage } from "./helpers.ts";

const SPECS: FlagSpec[] = [
  { name: "cache", kind: "bool", help: "", group: "g", default: false },
  { name: "destination", short: "d", kind: "list", help: "", group: "g" },
  { name: "target", kind: "string", help: "", group: "g" },
];

const pairs = (split: SplitArgs) => split.flags.map(({ spec, value }) => [spec.name, value]);

Deno.test("splitArgs reads flags (short and long alike) and keeps arguments in order", () => {
  const words = normalizeArgs(["a", "-d", "r/x", "--cache", "b", "--target", "-x", "-5"], SPECS);
  const split = splitArgs(words, SPECS);
  assert.deepEqual(pairs(split), [["destination", "r/x"], ["cache", "true"], ["target", "-x"]]);
  assert.deepEqual(split.operands, ["a", "b", "-5"]);
  assert.equal(split.unknown, undefined);
  assert.equal(split.help, false);
});

Deno.test("splitArgs: the first unknown flag is kept; later words are neither flags nor args", () => {
  const split = splitArgs(["--nope=1", "x", "-q", "--destination=r", "--", "-h"], SPECS);
  assert.equal(split.unknown, "--nope=1");
  assert.deepEqual(split.operands, []);
  assert.deepEqual(pairs(split), [["destination", "r"]]);
  assert.equal(split.help, true);
  assert.equal(splitArgs(["a", "--", "-h"], SPECS).help, false);
  assert.equal(splitArgs(["--target"], SPECS).missingValue?.name, "target");
});

Deno.test("a value flag takes the next word even when it starts with '-'", () => {
  const { options } = build([
    "--no-push",
    "--target",
    "-x",
    "-d",
    "--cache",
    "--build-arg",
    "--=1",
  ]);
  assert.equal(options.target, "-x");
  assert.deepEqual(options.destinations, ["--cache"]);
  assert.deepEqual(options.buildArgs, ["--=1"]);
});

Deno.test("negative numbers are arguments, not flags", () => {
  usage(["--no-push", "-5"], /unexpected argument '-5' for build/);
  usage(["--no-push", "-1.5"], /unexpected argument '-1.5' for build/);
  usage(["--no-push", "-5x"], /unknown flag -5x for build/);
});

Deno.test("unknown short groups are one unknown flag", () => {
  usage(["--no-push", "-xv", "loud"], /unknown flag -xv for build/);
  usage(["--no-push", "-hd"], /unknown flag -hd for build/);
});

Deno.test("error order: bad value, missing value, help, unknown flag, arguments", () => {
  usage(["--no-push", "--frob", "--push-retry=x"], /'x' for --push-retry/);
  usage(["--frob", "--help", "--destination"], /option '-d, --destination <ref>' argument missing/);
  assert.equal(parse(["--no-push", "--frob", "--help"]).command, "help");
  assert.equal(parse(["copy", "--frob", "--", "--help"]).command, "help");
  usage(["copy", "a", "b", "--", "--help"], /unexpected argument '--help' for copy/);
  usage(["copy", "--frob", "a", "b", "c"], /unknown flag --frob for copy/);
  usage(["copy", "a", "b", "--jobs"], /option '--jobs <n>' argument missing/);
  usage(["manifest"], /manifest is missing argument 'REF'; usage: kaniko manifest REF \[flags\]/);
});

Deno.test("help wraps long descriptions to the given width, 80 by default", () => {
  assert.equal(commandHelp("tags"), commandHelp("tags", 80));
  const lines = commandHelp("tags", 100).split("\n");
  const at = lines.findIndex((line) => line.startsWith("  --skip-default-registry-fallback "));
  assert.ok(at > 0);
  assert.ok(lines.every((line) => line.length <= 100));
  const column = lines[at].indexOf("Fail instead");
  assert.match(lines[at + 1], new RegExp(`^ {${column}}\\S`));
  // Too narrow a column for the descriptions: they stay on one line.
  assert.ok(commandHelp("tags", 60).includes("when no mirror has the image (default: false)"));
  const wide = (parse(["tags", "--help"], {}) as Of<"help">).text;
  assert.match(wide, /^Usage: kaniko tags REPO \[flags\]\n\nList the tags/);
  assert.match(commandHelp("version"), /^Usage: kaniko version \[options\]\n/);
  assert.ok(commandSpec("build").flags.length > 60);
});
