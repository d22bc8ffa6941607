/**
 * `kaniko parse --raw`: the contract's JSON for any syntactically valid Dockerfile (from a file or
 * `-` for stdin), one `error:` line naming FILE:LINE otherwise, and a clear error for a file that
 * cannot be read.
 */
import assert from "node:assert/strict";

const CLI = new URL("../../cli.ts", import.meta.url).pathname;

async function cli(args: string[], stdin?: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    env: { NO_COLOR: "1" },
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const out = await child.output();
  const decoder = new TextDecoder();
  return { code: out.code, out: decoder.decode(out.stdout), err: decoder.decode(out.stderr) };
}

async function withFile<T>(text: string, fn: (path: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "kaniko-parse-raw-" });
  try {
    await Deno.writeTextFile(`${dir}/Dockerfile`, text);
    return await fn(`${dir}/Dockerfile`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const DOCKERFILE = [
  "# syntax=docker/dockerfile:1",
  "ARG BASE=alpine",
  "FROM ${BASE} AS build",
  "COPY --chown=1:1 <<EOF /tmp/",
  "hello",
  "EOF",
  'CMD ["echo", "\\u00e9"]',
  "ONBUILD RUN make \\",
  "  all",
].join("\n") + "\n";

Deno.test("parse --raw: the contract's JSON", async () => {
  const r = await withFile(DOCKERFILE, (path) => cli(["parse", "--raw", "--dockerfile", path]));
  assert.equal(r.code, 0, r.err);
  assert.equal(r.err, "");
  const json = JSON.parse(r.out);
  assert.deepEqual(Object.keys(json), ["escape", "directives", "instructions", "warnings"]);
  assert.equal(json.escape, "\\");
  assert.deepEqual(json.directives, { syntax: "docker/dockerfile:1" });
  const [arg, from, copy, cmd, onbuild] = json.instructions;
  assert.deepEqual(Object.keys(copy).slice(0, 8), [
    "keyword",
    "line",
    "endLine",
    "flags",
    "args",
    "json",
    "heredocs",
    "onbuild",
  ]); // deno-fmt-ignore
  assert.deepEqual([arg.keyword, arg.args, arg.rawArgs], ["ARG", ["BASE", "alpine"], ["BASE=alpine"]]);
  assert.deepEqual([from.args, from.line], [["${BASE}", "AS", "build"], 3]);
  assert.deepEqual(
    { ...copy, original: undefined },
    {
      keyword: "COPY",
      line: 4,
      endLine: 6,
      flags: ["--chown=1:1"],
      args: ["<<EOF", "/tmp/"],
      json: false,
      heredocs: [{ name: "EOF", content: "hello\n", expand: true, chomp: false }],
      onbuild: null,
      original: undefined,
    },
  );
  assert.deepEqual([cmd.args, cmd.json], [["echo", "é"], true]);
  assert.deepEqual([onbuild.line, onbuild.endLine, onbuild.args], [8, 9, ["RUN", "make   all"]]);
  assert.equal(onbuild.onbuild.keyword, "RUN");
});

Deno.test("parse --raw: - reads standard input", async () => {
  const r = await cli(["parse", "--raw", "-f", "-"], "run echo hi\n");
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(JSON.parse(r.out).instructions[0].args, ["echo hi"]);
});

Deno.test("parse --raw: a file without FROM is still a syntax tree", async () => {
  const r = await withFile("ENV A=1\nFOO bar\n", (path) => cli(["parse", "--raw", "-f", path]));
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(JSON.parse(r.out).instructions.map((i: { keyword: string }) => i.keyword), [
    "ENV",
    "FOO",
  ]);
});

Deno.test("parse --raw: a syntax error is one error line with FILE:LINE", async () => {
  await withFile("FROM a\n\nENV PATH\n", async (path) => {
    const r = await cli(["parse", "--raw", "-f", path]);
    assert.equal(r.code, 1);
    assert.equal(r.out, "");
    assert.equal(
      r.err,
      `error: ${path}:3: ENV: must have two arguments: ENV name=value (or the legacy ENV name value)\n`,
    );
  });
});

Deno.test("parse: a missing Dockerfile", async () => {
  const r = await cli(["parse", "--raw", "-f", "/nonexistent/Dockerfile"]);
  assert.equal(r.code, 1);
  assert.equal(r.err, "error: cannot read Dockerfile /nonexistent/Dockerfile: no such file\n");
});

Deno.test("parse: a directory is not a Dockerfile", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const r = await cli(["parse", "--raw", "-f", dir]);
    assert.equal(r.code, 1);
    assert.match(r.err, /^error: cannot read Dockerfile [^\n]+: [^\n]+\n$/);
  } finally {
    await Deno.remove(dir);
  }
});

Deno.test("parse (without --raw): argument rules are checked first", async () => {
  const r = await withFile("FROM a\nEXPOSE 80/http\n", (path) => cli(["parse", "-f", path]));
  assert.equal(r.code, 1);
  assert.match(r.err, /^error: .*Dockerfile:2: EXPOSE: invalid protocol "http"\n$/);
});
