/**
 * Build benchmark (`deno task bench:build`): our `cli.ts` build against `buildah bud
 * --isolation chroot`, in the same run, on a debootstrap Debian base.
 *
 * 1. Once (cached under `.testbed/bench/`): a Debian bookworm `minbase` root from debootstrap
 *    (the machine's configured mirror), tarred (GNU tar) and gzipped into an OCI layout
 *    (`lib/oci/layout.ts`), see `scripts/bench_build/debian.ts`; 10,000 small files and a 1 GiB
 *    file for the contexts, see `scripts/bench_build/inputs.ts`.
 * 2. Every run: the base is pushed with our `cli.ts copy` to the test bed's plain registry as
 *    `bench/debian:bookworm` (skipped when the registry already serves it), and pulled once into
 *    a private buildah store (untimed), so that buildah builds from local storage, as it would
 *    on a machine that has built before. Ours has no base-image cache: **every one of our runs
 *    pulls the 50 MB base layer from the registry and unpacks it** (that cost is in our figures
 *    and not in buildah's). With `--buildah-cold`, buildah's store loses the base after every
 *    run instead, so that each `bud` pulls it too (both tools pay the pull).
 * 3. Scenarios, each `--runs N` times (default 3), alternating which tool goes first:
 *    (a) `COPY files/ /data/` of 10,000 small files (16–2,048 bytes, 10 MB);
 *    (b) `RUN` a shell loop creating 10,000 files in `/d`;
 *    (c) rebuild of (a) after changing one file of the context before each run; neither tool has
 *        a layer cache (ours has none yet; buildah runs without `--layers`), so this is a full
 *        second build of (a) on a warm page cache, with one file's content different;
 *    (d) one 1 GiB layer: `COPY big.bin /` (1 GiB over 16 symbols, gzip makes it about half),
 *        or with `--big-mode run`, `RUN` writing 1 GiB with `yes | head -c`. Target: our peak RSS.
 *    Both tools push the result in every run, and the time includes it: ours pushes as part of
 *    the build (`-d`); buildah runs `bud` then `push`, and its figure is the sum (peak RSS: the
 *    larger). (a)–(c) push to the plain registry, where the base layer already is (both tools
 *    mount or skip it and upload only the new layer); (d) pushes to a fresh registry per run
 *    (nothing is left behind), so both upload the base layer too.
 *    Each tool uses its defaults otherwise: OCI manifests, gzip (ours level 1, as Kaniko;
 *    buildah's default level 6); buildah commits one layer for all instructions.
 * 4. Prints medians: seconds, ratio ours/buildah against the target (≤ 0.5), peak RSS (target
 *    for (d): ours < 200 MB), and where our time went (from our JSON log's timestamps: start-up,
 *    base pull + unpack, each step, push, exit). Misses are marked; the exit code is 0 either way.
 *
 * Flags: `--runs N`, `--only a,b,c,d`, `--files N` (default 10000), `--big-mib N` (1024),
 * `--big-mode copy|run`, `--buildah-driver overlay|vfs` (default overlay: buildah's default here,
 * and its fastest), `--buildah-cold`, `--json`. Needs root, buildah, debootstrap (or `apt-get download`) and the
 * test bed (started when not running, and stopped again at the end).
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startExtraRegistry, testbed } from "../tests/_testbed.ts";
import { isRunning, stop as stopTestbed } from "./testbed.ts";
import { REPO_ROOT, stateDir, type TestbedEnv } from "./testbed/env.ts";
import {
  DEBIAN_REPO,
  DEBIAN_TAG,
  type DebianImage,
  ensureDebianImage,
} from "./bench_build/debian.ts";
import {
  ensureBigFile,
  ensureSmallFiles,
  touchSmallFile,
  writeDockerfile,
} from "./bench_build/inputs.ts";
import { median, ourPhases, rssMethod, type Timed, timed } from "./_bench_measure.ts";
import { BuildahStore, buildahVersion } from "./bench_build/buildah.ts";

const MiB = 1024 * 1024;
const CLI = join(REPO_ROOT, "cli.ts");
/** How `deno task kaniko` runs the CLI. */
const V8_FLAGS = "--v8-flags=--max-semi-space-size=2";
/** Targets of issue 4 §11. */
const RATIO_TARGET = 0.5;
const RSS_TARGET = 200e6;
/** The small file that (c) changes. */
const CHANGED_FILE = 4242;
const MANIFEST_ACCEPT = [
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");

function log(s: string): void {
  console.error(`bench:build: ${s}`);
}

type Tool = "ours" | "buildah";

/** One timed run of one tool. */
interface Sample {
  seconds: number;
  peakRss: number;
  /** Ours: phases from the log; buildah: `bud` and `push`. */
  parts: Record<string, number>;
  /** Compressed size of the image's last layer. */
  layerSize: number;
}

interface Scenario {
  id: string;
  name: string;
  ctx: string;
  dockerfile: string;
  /** "ratio": ours/buildah ≤ 0.5; "rss": our peak RSS < 200 MB. */
  target: "ratio" | "rss";
  /** Push to a fresh registry per run instead of the plain one. */
  freshRegistry?: boolean;
  /** Called before each run of each tool. */
  before?: (tool: Tool, run: number) => Promise<void>;
}

interface Row {
  scenario: Scenario;
  ours: Sample[];
  buildah: Sample[];
}

// ---------------------------------------------------------------------------------------------

/** GETs a manifest over plain HTTP and returns it. */
async function manifest(host: string, repo: string, tag: string): Promise<{
  digest: string;
  layers: { size: number; digest: string }[];
}> {
  const res = await fetch(`http://${host}/v2/${repo}/manifests/${tag}`, {
    headers: { accept: MANIFEST_ACCEPT },
  });
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new Error(`${host}/${repo}:${tag}: HTTP ${res.status}`);
  }
  const digest = res.headers.get("docker-content-digest") ?? "";
  const m = await res.json();
  return { digest, layers: m.layers ?? [] };
}

async function servedDigest(host: string, repo: string, tag: string): Promise<string | undefined> {
  try {
    return (await manifest(host, repo, tag)).digest;
  } catch {
    return undefined;
  }
}

/** Pushes the base image to the plain registry with our `copy` unless it is served already. */
async function ensureBasePushed(env: TestbedEnv, image: DebianImage): Promise<string> {
  const host = env.registries.plain.host;
  const ref = `${host}/${DEBIAN_REPO}:${DEBIAN_TAG}`;
  if (await servedDigest(host, DEBIAN_REPO, DEBIAN_TAG) !== image.digest) {
    log(`pushing the base to ${ref} (cli.ts copy) ...`);
    await timed([
      Deno.execPath(),
      "run",
      "-A",
      V8_FLAGS,
      CLI,
      "copy",
      `oci:${image.layout}:${DEBIAN_TAG}`,
      ref,
      "--insecure-registry",
      host,
    ]);
  }
  return ref;
}

async function runOurs(scenario: Scenario, host: string, base: string): Promise<Sample> {
  const repo = `bench/build-ours-${scenario.id}`;
  const ref = `${host}/${repo}:latest`;
  const baseHost = base.split("/")[0];
  const hosts = [...new Set([baseHost, host])].flatMap((h) => ["--insecure-registry", h]);
  const t = await timed([
    Deno.execPath(),
    "run",
    "-A",
    V8_FLAGS,
    CLI,
    "--isolation",
    "chroot",
    "-c",
    scenario.ctx,
    "-f",
    scenario.dockerfile,
    "-d",
    ref,
    ...hosts,
    "--log-format=json",
    "--log-timestamp",
    "-v",
    "debug",
  ]);
  const m = await manifest(host, repo, "latest");
  if (m.layers.length !== 2) {
    throw new Error(`ours ${scenario.id}: ${m.layers.length} layers, expected base + 1`);
  }
  return {
    seconds: t.seconds,
    peakRss: t.peakRss,
    parts: ourPhases(t),
    layerSize: m.layers[1].size,
  };
}

async function runBuildah(
  store: BuildahStore,
  scenario: Scenario,
  host: string,
  cold: string | undefined,
): Promise<Sample> {
  const repo = `bench/build-buildah-${scenario.id}`;
  const ref = `${host}/${repo}:latest`;
  let bud: Timed | undefined;
  let push: Timed | undefined;
  try {
    bud = await store.bud(scenario.ctx, scenario.dockerfile, ref);
    push = await store.push(ref);
  } finally {
    await store.rmi(ref);
    if (cold) await store.rmi(cold);
  }
  const m = await manifest(host, repo, "latest");
  if (m.layers.length !== 2) {
    throw new Error(`buildah ${scenario.id}: ${m.layers.length} layers, expected base + 1`);
  }
  return {
    seconds: bud.seconds + push.seconds,
    peakRss: Math.max(bud.peakRss, push.peakRss),
    parts: { bud: bud.seconds, push: push.seconds },
    layerSize: m.layers[1].size,
  };
}

/**
 * How fast the disk is right now, with GNU tools (the machine is shared and noisy): the base
 * layer unpacked by `tar -xzf`, the 10,000 files copied by `cp -a`, both removed by `rm -rf`.
 */
async function diskProbe(image: DebianImage, filesDir: string): Promise<string> {
  const tmp = await Deno.makeTempDir({ prefix: "bench-probe-" });
  try {
    const blob = join(image.layout, "blobs", "sha256", image.layerDigest.slice("sha256:".length));
    const root = join(tmp, "root");
    await Deno.mkdir(root);
    const untar = await timed(["tar", "-xzf", blob, "-C", root, "--numeric-owner"]);
    const cp = await timed(["cp", "-a", filesDir, join(tmp, "files")]);
    const rm = await timed(["rm", "-rf", root, join(tmp, "files")]);
    return `GNU tools now: tar -xzf of the base ${untar.seconds.toFixed(2)} s, ` +
      `cp -a of the small files ${cp.seconds.toFixed(2)} s, rm -rf of both ${
        rm.seconds.toFixed(2)
      } s.`;
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "?";
  }
}

// ---------------------------------------------------------------------------------------------
// Report

function pad(text: string, width: number, right = false): string {
  return right ? text.padStart(width) : text.padEnd(width);
}

const mb = (n: number) => `${(n / 1e6).toFixed(0)} MB`;

interface Summary {
  id: string;
  scenario: string;
  oursSeconds: number;
  buildahSeconds: number;
  ratio: number;
  oursPeakRss: number;
  buildahPeakRss: number;
  oursLayerSize: number;
  buildahLayerSize: number;
  target: string;
  met: boolean;
  oursPhases: Record<string, number>;
  buildahParts: Record<string, number>;
}

function medianParts(samples: Sample[]): Record<string, number> {
  const keys = [...new Set(samples.flatMap((s) => Object.keys(s.parts)))];
  return Object.fromEntries(
    keys.map((k) => [k, median(samples.map((s) => s.parts[k] ?? 0))]),
  );
}

function summarize(row: Row): Summary {
  const ours = median(row.ours.map((s) => s.seconds));
  const buildah = median(row.buildah.map((s) => s.seconds));
  const oursRss = median(row.ours.map((s) => s.peakRss));
  const maxOursRss = Math.max(...row.ours.map((s) => s.peakRss));
  const ratio = ours / buildah;
  const sc = row.scenario;
  return {
    id: sc.id,
    scenario: sc.name,
    oursSeconds: ours,
    buildahSeconds: buildah,
    ratio,
    oursPeakRss: oursRss,
    buildahPeakRss: median(row.buildah.map((s) => s.peakRss)),
    oursLayerSize: median(row.ours.map((s) => s.layerSize)),
    buildahLayerSize: median(row.buildah.map((s) => s.layerSize)),
    target: sc.target === "ratio" ? `ratio ≤ ${RATIO_TARGET}` : `ours RSS < ${mb(RSS_TARGET)}`,
    met: sc.target === "ratio" ? ratio <= RATIO_TARGET : maxOursRss < RSS_TARGET,
    oursPhases: medianParts(row.ours),
    buildahParts: medianParts(row.buildah),
  };
}

function printReport(rows: Row[], info: string[]): Summary[] {
  const sums = rows.map(summarize);
  console.log(`\n${info.join("\n")}\n`);
  const header = [
    "scenario",
    "ours s",
    "buildah s",
    "ours/buildah",
    "ours peak RSS",
    "buildah peak RSS",
    "target",
    "",
  ];
  const widths = [34, 7, 10, 12, 13, 16, 18, 4];
  const lines = [header.map((h, i) => pad(h, widths[i], i > 0 && i < 6)).join("  ")];
  for (const s of sums) {
    lines.push([
      pad(`(${s.id}) ${s.scenario}`, widths[0]),
      pad(s.oursSeconds.toFixed(2), widths[1], true),
      pad(s.buildahSeconds.toFixed(2), widths[2], true),
      pad(s.ratio.toFixed(2), widths[3], true),
      pad(mb(s.oursPeakRss), widths[4], true),
      pad(mb(s.buildahPeakRss), widths[5], true),
      pad(s.target, widths[6]),
      s.met ? "ok" : "MISS",
    ].join("  "));
  }
  console.log(lines.join("\n"));

  console.log("\nNew layer, compressed (median): ours gzip -1, buildah gzip -6");
  for (const s of sums) {
    console.log(
      `  (${s.id}) ours ${(s.oursLayerSize / 1e6).toFixed(2)} MB, ` +
        `buildah ${(s.buildahLayerSize / 1e6).toFixed(2)} MB`,
    );
  }
  console.log("\nWhere the time goes (medians, seconds)");
  for (const s of sums) {
    const ours = Object.entries(s.oursPhases).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ");
    const b = Object.entries(s.buildahParts).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ");
    console.log(`  (${s.id}) ours:    ${ours}`);
    console.log(`  (${s.id}) buildah: ${b}`);
  }
  console.log("\nAll runs (seconds / peak RSS MB)");
  for (const row of rows) {
    for (const tool of ["ours", "buildah"] as const) {
      const list = row[tool].map((s) => `${s.seconds.toFixed(2)}/${(s.peakRss / 1e6).toFixed(0)}`);
      console.log(`  (${row.scenario.id}) ${pad(tool, 8)} ${list.join("  ")}`);
    }
  }
  const missed = sums.filter((s) => !s.met).map((s) => `(${s.id})`);
  console.log(
    missed.length ? `\nMISSED targets: ${missed.join(" ")}` : "\nAll targets met.",
  );
  return sums;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const { values: opts } = parseArgs({
    args: Deno.args,
    options: {
      runs: { type: "string", default: "3" },
      only: { type: "string", default: "a,b,c,d" },
      files: { type: "string", default: "10000" },
      "big-mib": { type: "string", default: "1024" },
      "big-mode": { type: "string", default: "copy" },
      "buildah-driver": { type: "string", default: "overlay" },
      "buildah-cold": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (opts.help) {
    console.log(
      "bench_build: time our build against buildah bud --isolation chroot on a Debian base\n" +
        "  --runs <n>               runs per tool and scenario (default: 3)\n" +
        "  --only <a,b,c,d>         scenarios: (a) COPY 10k files, (b) RUN creating 10k files,\n" +
        "                           (c) rebuild of (a) after changing one file, (d) 1 GiB layer\n" +
        "  --files <n>              small files for (a) and (c) (default: 10000)\n" +
        "  --big-mib <n>            size of the big layer's file in MiB (default: 1024)\n" +
        "  --big-mode copy|run      (d) COPYs a file from the context, or RUN writes it\n" +
        "  --buildah-driver <name>  buildah storage driver: overlay (default) or vfs\n" +
        "  --buildah-cold           buildah pulls the base in every run (default: pulled once)\n" +
        "  --json                   also print the figures as one JSON line",
    );
    return;
  }
  if (Deno.uid() !== 0) throw new Error("run as root (chroot builds, debootstrap)");
  const runs = Math.max(1, Number(opts.runs));
  const only = new Set(opts.only.split(",").map((s) => s.trim()));
  const fileCount = Math.max(1, Number(opts.files));
  const bigSize = Math.max(1, Number(opts["big-mib"])) * MiB;
  const bigMode = opts["big-mode"];
  if (bigMode !== "copy" && bigMode !== "run") throw new Error("--big-mode: copy or run");
  const driver = opts["buildah-driver"];

  const benchDir = join(stateDir(), "bench");
  const buildDir = join(benchDir, "build");
  const image = await ensureDebianImage(benchDir, log);
  const filesDir = join(buildDir, "ctx-copy", "files");
  const filesBytes = await ensureSmallFiles(
    filesDir,
    join(buildDir, `files-${fileCount}.json`),
    fileCount,
    log,
  );
  if (only.has("d") && bigMode === "copy") {
    await ensureBigFile(
      join(buildDir, "ctx-big", "big.bin"),
      join(buildDir, "big.json"),
      bigSize,
      log,
    );
  }
  // (c) may have been interrupted: start from the original content.
  if (CHANGED_FILE < fileCount) await touchSmallFile(filesDir, CHANGED_FILE);

  const startedTestbed = !isRunning();
  const env = await testbed();
  const store = await BuildahStore.create(driver);
  try {
    const host = env.registries.plain.host;
    const base = await ensureBasePushed(env, image);
    const cold = opts["buildah-cold"] ? base : undefined;
    let pulled = "pulls the base in every run (in its figures)";
    if (!cold) {
      log(`pulling the base into buildah's ${driver} store (untimed) ...`);
      const pull = await store.pull(base);
      log(`buildah pull took ${pull.seconds.toFixed(1)} s`);
      pulled = `base pulled into its store beforehand (untimed: ${pull.seconds.toFixed(1)} s)`;
    }
    // Warm Deno's module cache so that no run pays for the first compile.
    await timed([Deno.execPath(), "run", "-A", CLI, "version"]);
    const loadBefore = loadAverage();
    const probe = await diskProbe(image, filesDir);
    log(probe);

    const from = `FROM ${base}`;
    const ctxCopy = join(buildDir, "ctx-copy");
    const ctxRun = join(buildDir, "ctx-run");
    const ctxBig = join(buildDir, bigMode === "copy" ? "ctx-big" : "ctx-bigrun");
    const loop = "mkdir /d; i=0; while [ $i -lt 10000 ]; do echo $i > /d/f$i; i=$((i+1)); done";
    const copyDf = await writeDockerfile(ctxCopy, [from, "COPY files/ /data/"]);
    const runDf = await writeDockerfile(ctxRun, [from, `RUN ${loop}`]);
    const bigDf = await writeDockerfile(ctxBig, [
      from,
      bigMode === "copy"
        ? "COPY big.bin /big.bin"
        : `RUN yes 'kaniko bench: 1 GiB of text in one layer' | head -c ${bigSize} > /big.bin`,
    ]);
    const all: Scenario[] = [
      {
        id: "a",
        name: `COPY ${fileCount} files`,
        ctx: ctxCopy,
        dockerfile: copyDf,
        target: "ratio",
      },
      {
        id: "b",
        name: "RUN creating 10000 files",
        ctx: ctxRun,
        dockerfile: runDf,
        target: "ratio",
      },
      {
        id: "c",
        name: "rebuild (a), 1 file changed",
        ctx: ctxCopy,
        dockerfile: copyDf,
        target: "ratio",
        before: (tool, i) => touchSmallFile(filesDir, CHANGED_FILE, `${tool} run ${i + 1}`),
      },
      {
        id: "d",
        name: `${bigSize / MiB} MiB layer (${bigMode === "copy" ? "COPY" : "RUN"})`,
        ctx: ctxBig,
        dockerfile: bigDf,
        target: "rss",
        freshRegistry: true,
      },
    ];
    const scenarios = all.filter((s) => only.has(s.id));

    const rows: Row[] = [];
    try {
      for (const scenario of scenarios) {
        const row: Row = { scenario, ours: [], buildah: [] };
        for (let i = 0; i < runs; i++) {
          const order: Tool[] = i % 2 === 0 ? ["ours", "buildah"] : ["buildah", "ours"];
          for (const tool of order) {
            await scenario.before?.(tool, i);
            let sample: Sample;
            if (scenario.freshRegistry) {
              await using dest = await startExtraRegistry(env);
              sample = tool === "ours"
                ? await runOurs(scenario, dest.info.host, base)
                : await runBuildah(store, scenario, dest.info.host, cold);
            } else {
              sample = tool === "ours"
                ? await runOurs(scenario, host, base)
                : await runBuildah(store, scenario, host, cold);
            }
            row[tool].push(sample);
            log(
              `(${scenario.id}) run ${i + 1}/${runs} ${tool}: ${sample.seconds.toFixed(2)} s, ` +
                `peak RSS ${mb(sample.peakRss)}`,
            );
          }
        }
        rows.push(row);
      }
    } finally {
      if (CHANGED_FILE < fileCount) await touchSmallFile(filesDir, CHANGED_FILE);
    }

    const sums = printReport(rows, [
      `Base: debootstrap --variant=minbase bookworm, ${image.files} files, ` +
      `${(image.rootfsBytes / 1e6).toFixed(0)} MB, one gzip layer of ` +
      `${(image.layerSize / 1e6).toFixed(1)} MB (${image.digest}).`,
      `Context of (a)/(c): ${fileCount} files, ${(filesBytes / 1e6).toFixed(1)} MB.`,
      `Medians of ${runs} runs, tools alternating. Ours: deno run -A ${V8_FLAGS} cli.ts ` +
      `--isolation chroot (pulls and unpacks the base every run).`,
      `buildah: ${await buildahVersion()}, bud --isolation chroot + push, storage driver ` +
      `${driver}, ${pulled}.`,
      `Both push in every run ((a)–(c): to the registry holding the base; (d): to a fresh one). ` +
      `RSS: ${rssMethod()}.`,
      `Machine: ${navigator.hardwareConcurrency} CPUs, load average ${loadBefore} before the ` +
      `runs and ${loadAverage()} after. ${probe}`,
    ]);
    if (opts.json) {
      console.log(JSON.stringify({
        base: { digest: image.digest, layerSize: image.layerSize, files: image.files },
        runs,
        buildahDriver: driver,
        buildahCold: !!cold,
        machine: {
          cpus: navigator.hardwareConcurrency,
          loadBefore,
          loadAfter: loadAverage(),
          probe,
        },
        rows: sums,
      }));
    }
  } finally {
    await store.destroy();
    if (startedTestbed) await stopTestbed();
  }
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(`error: ${(e as Error).message.replace(/\s+/g, " ")}`);
    Deno.exit(1);
  }
}
