/**
 * THE test command (`deno task test`): starts the test bed unless it already runs, runs
 * `deno test -A --parallel tests/` with the extra arguments given (e.g. `--filter copy`, or paths
 * such as `tests/oci/`, which replace `tests/`), streams its output, prints a final line exactly
 * `N passed, M failed` (ignored tests are reported on the line before), stops the test bed if it
 * started it, and exits non-zero when anything failed.
 *
 *   deno task test [--no-testbed] [DENO_TEST_ARGS…]
 *
 * Counts come from Deno's summary line (`ok | N passed | M failed`), else from the per-test
 * `... ok` / `... FAILED` lines. A run that fails without any failed test (a type error, no test
 * module found) counts as one failure. When the test bed cannot start, the tests still run with
 * `TESTBED_UNAVAILABLE` set (integration tests then fail at once with its reason; unit tests
 * are unaffected).
 * @module
 */
import { isRunning, start, stop } from "./testbed.ts";
import { REPO_ROOT, stateDir } from "./testbed/env.ts";
import { exists } from "./testbed/fs.ts";

/** Flags of `deno test` that take a separate value. */
const VALUE_FLAGS = new Set([
  "--filter",
  "--reporter",
  "--junit-path",
  "--config",
  "-c",
  "--env-file",
  "--import-map",
]);

/** Splits user arguments into test paths (existing files/dirs) and other `deno test` arguments. */
export function splitArgs(args: string[]): { paths: string[]; flags: string[] } {
  const paths: string[] = [];
  const flags: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (VALUE_FLAGS.has(a) && i + 1 < args.length) {
      flags.push(a, args[++i]);
    } else if (!a.startsWith("-") && exists(a)) {
      paths.push(a);
    } else {
      flags.push(a);
    }
  }
  return { paths, flags };
}

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;

/** Counts from `deno test` output: the last summary line wins, else per-test result lines. */
export function countResults(
  output: string,
): { passed: number; failed: number; ignored: number; summary: boolean } {
  const lines = output.replace(ANSI, "").split(/\r?\n/);
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = lines[i].match(/^(?:ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed/);
    if (m) {
      const ignored = lines[i].match(/\| (\d+) ignored/);
      return {
        passed: Number(m[1]),
        failed: Number(m[2]),
        ignored: ignored ? Number(ignored[1]) : 0,
        summary: true,
      };
    }
  }
  let passed = 0;
  let failed = 0;
  for (const l of lines) {
    if (/^\S.* \.\.\. ok(?: \(.*\))?$/.test(l)) passed++;
    else if (/^\S.* \.\.\. FAILED(?: \(.*\))?$/.test(l)) failed++;
  }
  return { passed, failed, ignored: 0, summary: false };
}

/** Copies a stream to `out` while keeping the text for counting. */
async function tee(
  stream: ReadableStream<Uint8Array>,
  out: { write(p: Uint8Array): Promise<number> },
  keep: string[],
) {
  const dec = new TextDecoder();
  for await (const chunk of stream) {
    let off = 0;
    while (off < chunk.length) off += await out.write(chunk.subarray(off));
    keep.push(dec.decode(chunk, { stream: true }));
  }
}

async function main(args: string[]): Promise<number> {
  const noTestbed = args.includes("--no-testbed");
  const { paths, flags } = splitArgs(args.filter((a) => a !== "--no-testbed"));
  const dir = stateDir();
  const env: Record<string, string> = { TESTBED_DIR: dir };
  // Plain text in logs (CI); colours only when a person watches a terminal.
  if (!Deno.stdout.isTerminal()) env.NO_COLOR = "1";
  let ours = false;
  if (!noTestbed) {
    ours = !isRunning(dir);
    try {
      const r = await start(dir);
      console.error(
        `test: test bed ready in ${(r.ms / 1000).toFixed(1)} s${ours ? "" : " (already running)"}`,
      );
    } catch (e) {
      const msg = (e as Error).message;
      console.error(`test: the test bed could not start: ${msg}`);
      env.TESTBED_UNAVAILABLE = msg.split("\n")[0];
    }
  } else {
    env.TESTBED_UNAVAILABLE = "deno task test --no-testbed";
  }

  const child = new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", "--parallel", ...flags, ...(paths.length ? paths : ["tests/"])],
    cwd: REPO_ROOT,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const onSignal = () => {
    try {
      child.kill("SIGINT");
    } catch { /* exited */ }
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const out: string[] = [];
  const err: string[] = [];
  const [status] = await Promise.all([
    child.status,
    tee(child.stdout, Deno.stdout, out),
    tee(child.stderr, Deno.stderr, err),
  ]);
  Deno.removeSignalListener("SIGINT", onSignal);
  Deno.removeSignalListener("SIGTERM", onSignal);

  const counted = countResults(out.join("") + "\n" + err.join(""));
  const { passed, ignored } = counted;
  const failed = !status.success && counted.failed === 0 ? 1 : counted.failed;

  if (ours) {
    const stopped = await stop(dir);
    if (stopped.length) console.error(`test: stopped the test bed (${stopped.join(", ")})`);
  }
  if (ignored) console.log(`${ignored} ignored`);
  console.log(`${passed} passed, ${failed} failed`);
  return failed > 0 || !status.success ? 1 : 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
