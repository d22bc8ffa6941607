/**
 * Multi-platform benchmark (`deno task bench:multi`): one 4-platform RUN-less build
 * (`--multi-platform linux/amd64,linux/arm64,linux/arm/v7,linux/s390x --publish-index`) against
 * the same four platforms built one by one (`--custom-platform P`, four processes in
 * sequence), in the same run, on the test bed's busybox index. The Dockerfile is
 * `FROM busybox` + `COPY files/ /app/` (a few MB of files, `--files-mib`) + `ENV`. Every build
 * pushes to a fresh repository of the plain registry, so every new blob really moves; both
 * sides run the CLI as `deno task kaniko` does, and the time is the whole process (start-up,
 * pull, build, push). Prints the medians (`--runs N`, default 3; the order alternates) in
 * seconds and the ratio multi / sequential against the target (≤ 0.4). `--jobs N` sets the
 * local driver's concurrency (`KANIKO_LOCAL_JOBS`). Needs root (builds use
 * `--isolation chroot`) and the test bed (started when not running; left running).
 * @module
 */
import { median } from "./_bench_measure.ts";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { testbed } from "../tests/_testbed.ts";
import { cliRegistryFlags } from "./testbed/push.ts";
import { REPO_ROOT } from "./testbed/env.ts";

const PLATFORMS = ["linux/amd64", "linux/arm64", "linux/arm/v7", "linux/s390x"];
const TARGET = 0.4;

const args = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "3" },
    "files-mib": { type: "string", default: "4" },
    jobs: { type: "string" },
    json: { type: "boolean", default: false },
  },
});
const runs = Number(args.values.runs);
const filesMib = Number(args.values["files-mib"]);

/** A context of `mib` MiB in 32 files of deterministic, poorly compressible bytes. */
async function writeContext(dir: string, base: string, mib: number): Promise<void> {
  await Deno.mkdir(join(dir, "files"), { recursive: true });
  const size = Math.floor((mib * 1024 * 1024) / 32);
  let x = 2463534242;
  for (let f = 0; f < 32; f++) {
    const bytes = new Uint8Array(size);
    for (let i = 0; i < size; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      bytes[i] = x & 0xff;
    }
    await Deno.writeFile(join(dir, "files", `f${f}.bin`), bytes);
  }
  await Deno.writeTextFile(
    join(dir, "Dockerfile"),
    `FROM ${base}\nCOPY files/ /app/\nENV APP=/app\n`,
  );
}

/** Runs the CLI as `deno task kaniko` does; returns the wall time in seconds. */
async function kaniko(cliArgs: string[], env: Record<string, string>): Promise<number> {
  const started = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--max-semi-space-size=2",
      join(REPO_ROOT, "cli.ts"),
      ...cliArgs,
    ],
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  const seconds = (performance.now() - started) / 1000;
  if (!out.success) {
    throw new Error(
      `build failed: ${new TextDecoder().decode(out.stderr).trim().split("\n").at(-1)}`,
    );
  }
  return seconds;
}

async function main(): Promise<void> {
  const env = await testbed();
  const host = env.registries.plain.host;
  const flags = Object.values(env.registries).flatMap((r) => cliRegistryFlags(r, env.ca));
  const context = await Deno.makeTempDir({ prefix: "kaniko-bench-multi-" });
  const kanikoDir = await Deno.makeTempDir({ prefix: "kaniko-bench-multi-dir-" });
  try {
    await writeContext(context, `${host}/library/busybox:latest`, filesMib);
    const common = [
      "--context",
      context,
      "--isolation",
      "chroot",
      "--kaniko-dir",
      kanikoDir,
      ...flags,
    ];
    const cliEnv: Record<string, string> = { DOCKER_CONFIG: env.dockerConfigDir };
    if (args.values.jobs) cliEnv.KANIKO_LOCAL_JOBS = args.values.jobs;
    const id = () => crypto.randomUUID().slice(0, 8);
    const multi = () =>
      kaniko([
        ...common,
        "--multi-platform",
        PLATFORMS.join(","),
        "--publish-index",
        "--destination",
        `${host}/bench-multi/multi-${id()}:1`,
      ], cliEnv);
    const sequential = async () => {
      let total = 0;
      for (const p of PLATFORMS) {
        total += await kaniko([
          ...common,
          "--custom-platform",
          p,
          "--destination",
          `${host}/bench-multi/single-${id()}:1`,
        ], cliEnv);
      }
      return total;
    };
    await multi(); // warm-up (module cache, page cache); not counted
    const m: number[] = [];
    const s: number[] = [];
    for (let i = 0; i < runs; i++) {
      if (i % 2 === 0) {
        m.push(await multi());
        s.push(await sequential());
      } else {
        s.push(await sequential());
        m.push(await multi());
      }
    }
    report(median(m), median(s), m, s);
  } finally {
    await Deno.remove(context, { recursive: true }).catch(() => {});
    await Deno.remove(kanikoDir, { recursive: true }).catch(() => {});
  }
}

function report(multi: number, seq: number, m: number[], s: number[]): void {
  const ratio = multi / seq;
  if (args.values.json) {
    console.log(JSON.stringify({ multi, sequential: seq, ratio, target: TARGET, runs: { m, s } }));
    return;
  }
  const mark = ratio <= TARGET ? "ok" : "MISSED";
  console.log(
    `multi-platform benchmark: ${PLATFORMS.length} platforms, ${filesMib} MiB COPY, ` +
      `medians of ${runs} (cores: ${navigator.hardwareConcurrency})`,
  );
  console.log(
    `  one 4-platform build      ${multi.toFixed(2)} s   (runs: ${
      m.map((x) => x.toFixed(2)).join(", ")
    })`,
  );
  console.log(
    `  4 single builds in a row  ${seq.toFixed(2)} s   (runs: ${
      s.map((x) => x.toFixed(2)).join(", ")
    })`,
  );
  console.log(`  ratio ${ratio.toFixed(2)} (target ≤ ${TARGET}: ${mark})`);
}

await main();
