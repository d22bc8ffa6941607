/**
 * End-to-end checks of `deno run -A cli.ts …`: exit codes, stdout/stderr separation, the single
 * `error:` line, help and version, and the options the command line produces (read from the
 * `build options` debug log line, which is written before the command runs).
 */
import assert from "node:assert/strict";
import { versionString } from "../../lib/version.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const CLI = new URL("../../cli.ts", import.meta.url).pathname;
const PASS_ENV = ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR"];

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function baseEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const name of PASS_ENV) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  return { ...env, ...extra };
}

async function run(args: string[], extraEnv: Record<string, string> = {}): Promise<Result> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    cwd: ROOT,
    env: baseEnv(extraEnv),
    clearEnv: true,
    stdin: "null",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

function assertOneErrorLine(result: Result, code: number, pattern: RegExp): void {
  assert.equal(result.code, code, result.stderr);
  assert.equal(result.stdout, "");
  const lines = result.stderr.split("\n").filter((line) => line !== "");
  assert.equal(lines.length, 1, `expected one line, got:\n${result.stderr}`);
  assert.ok(lines[0].startsWith("error: "), lines[0]);
  assert.match(lines[0], pattern);
}

/** Parses JSON log lines and returns the `build options` record. */
function buildOptionsLog(stderr: string): Record<string, any> {
  const records = stderr.split("\n").filter((line) => line.startsWith("{")).map((line) =>
    JSON.parse(line)
  );
  const record = records.find((r) => r.msg === "build options");
  assert.ok(record, `no 'build options' line in:\n${stderr}`);
  return record.options;
}

/** Flags that keep a real build (once it exists) from touching anything. */
function inertBuildFlags(dir: string): string[] {
  return ["--dry-run", `--context=${dir}/no-context`, `--kaniko-dir=${dir}/kaniko`];
}

Deno.test("--help lists the commands and the build flags with defaults; exit 0", async () => {
  const result = await run(["--help"]);
  assert.equal(result.code, 0);
  assert.equal(result.stderr, "");
  for (
    const word of ["copy SRC DST", "manifest REF", "digest REF", "tags REPO", "parse", "version"]
  ) {
    assert.ok(result.stdout.includes(word), word);
  }
  assert.match(result.stdout, /--cache-ttl <duration>.*\(default: 336h\)/);
  assert.match(result.stdout, /-d, --destination <ref>/);
  assert.match(result.stdout, /--insecure-registry <HOST>/);
});

Deno.test("copy --help lists its flags with defaults", async () => {
  const result = await run(["copy", "--help"]);
  assert.equal(result.code, 0);
  assert.match(result.stdout, /Usage: kaniko copy SRC DST \[flags\]/);
  assert.match(result.stdout, /--jobs <n> .*\(default: 4\)/);
  assert.match(result.stdout, /--upload-chunk-size <bytes> .*\(default: 0\)/);
  assert.match(result.stdout, /--push-retry-max-delay <n> .*\(default: 30000\)/);
  assert.match(result.stdout, /--log-format <format> .*default: "color"/);
});

Deno.test("version prints the version on stdout", async () => {
  const result = await run(["version"]);
  assert.deepEqual(result, { code: 0, stdout: `${versionString()}\n`, stderr: "" });
});

Deno.test("an unknown flag: exit 2 and a single error line", async () => {
  assertOneErrorLine(await run(["--no-push", "--frobnicate"]), 2, /unknown flag --frobnicate/);
  assertOneErrorLine(
    await run(["copy", "a", "b", "--destination=x"]),
    2,
    /unknown flag --destination for copy/,
  );
});

Deno.test("bad values: exit 2 and a single error line naming the flag", async () => {
  assertOneErrorLine(await run(["--no-push", "--push-retry=x"]), 2, /--push-retry.*whole number/);
  assertOneErrorLine(await run(["--no-push", "-v", "loud"]), 2, /--verbosity: expected one of/);
  assertOneErrorLine(
    await run(["--no-push", "--cache=perhaps"]),
    2,
    /--cache=true or --cache=false/,
  );
  assertOneErrorLine(await run(["--no-push", "--build-arg"]), 2, /--build-arg/);
  assertOneErrorLine(await run(["--oci-mode=x", "--no-push"]), 2, /--oci-mode/);
  assertOneErrorLine(await run(["nonsense"]), 2, /unknown command 'nonsense'/);
});

Deno.test("error lines never show credentials", async () => {
  const result = await run(["--no-push", "--registry-map=https://bob:hunter2@mirror"]);
  assertOneErrorLine(result, 2, /--registry-map/);
  assert.ok(!result.stderr.includes("hunter2"), result.stderr);
});

Deno.test("--x=false, repeatables and a bare --build-arg from the environment", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const result = await run([
      ...inertBuildFlags(dir),
      "-v=debug",
      "--log-format=json",
      "--no-push=true",
      "--require-native-nodes=false",
      "--cache-run-layers=false",
      "--reproducible=true",
      "-d",
      "reg.example/a:1",
      "--destination=reg.example/a:2",
      "--build-arg",
      "FROM_ENV",
      "--build-arg=X=a=b",
      "--label=k=v",
      "--insecure-registry=r1",
      "--insecure-registry",
      "r2",
    ], { FROM_ENV: "env value" });
    const options = buildOptionsLog(result.stderr);
    assert.equal(options.noPush, true);
    assert.equal(options.requireNativeNodes, false);
    assert.equal(options.cacheRunLayers, false);
    assert.equal(options.reproducible, true);
    assert.deepEqual(options.destinations, ["reg.example/a:1", "reg.example/a:2"]);
    assert.deepEqual(options.buildArgs, ["FROM_ENV=env value", "X=a=b"]);
    assert.deepEqual(options.labels, { k: "v" });
    assert.deepEqual(options.registry.insecureRegistries, ["r1", "r2"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("KANIKO_NO_PUSH stands in for --no-push; the cosign password is not logged", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const result = await run(
      [
        ...inertBuildFlags(dir),
        "-v",
        "debug",
        "--log-format",
        "json",
        "--cosign-key-password=pw-secret-1",
      ],
      { KANIKO_NO_PUSH: "true" },
    );
    const options = buildOptionsLog(result.stderr);
    assert.equal(options.noPush, true);
    assert.equal(options.cosignKeyPassword, "***");
    assert.ok(!result.stderr.includes("pw-secret-1"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deprecated aliases warn on stderr and still apply", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const result = await run([
      ...inertBuildFlags(dir),
      "--no-push",
      "--log-format=json",
      "-v=debug",
      "--snapshotMode=redo",
      "--whitelist-var-run=false",
    ]);
    const warnings = result.stderr.split("\n").filter((line) => line.includes('"level":"warn"'));
    assert.deepEqual(warnings.map((line) => JSON.parse(line).msg), [
      "Flag --snapshotMode is deprecated. Use: --snapshot-mode",
      "Flag --whitelist-var-run is deprecated. Use: --ignore-var-run",
    ]);
    const options = buildOptionsLog(result.stderr);
    assert.equal(options.snapshotMode, "redo");
    assert.equal(options.ignoreVarRun, false);
    assert.equal(result.stdout, "");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a failing command: one error line; a stack only at debug", async () => {
  assertOneErrorLine(
    await run(["parse", "-f", "no-such-Dockerfile"]),
    1,
    /^error: cannot read Dockerfile no-such-Dockerfile/,
  );
  const verbose = await run(["parse", "-f", "no-such-Dockerfile", "--verbosity=debug"]);
  assert.equal(verbose.code, 1);
  const lines = verbose.stderr.trimEnd().split("\n");
  const at = lines.findIndex((line) => line.startsWith("error: cannot read Dockerfile"));
  assert.ok(at >= 0, verbose.stderr);
  assert.equal(lines.filter((line) => line.startsWith("error:")).length, 1);
  assert.ok(lines.slice(at + 1).some((line) => /^\s+at /.test(line)), verbose.stderr);
});
