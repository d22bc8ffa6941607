/**
 * Registry transfer benchmark (`deno task bench`): our `cli.ts copy` against `skopeo copy`.
 *
 * 1. Builds, once (cached under `.testbed/bench/`), a single-layer image: one file of 512 MiB of
 *    random-ish but compressible bytes (a seeded xorshift stream over 16 symbols, which gzip
 *    halves), tarred and gzipped (level 6), in an OCI layout tagged `bench`.
 * 2. Pushes it to the test bed's plain registry (`bench/source:latest`) unless it is there.
 * 3. Times, in the same run and alternating the tools, `N` runs (default 3) each of
 *    (a) registry → registry: the plain registry to a fresh TLS registry, and
 *    (b) OCI layout → registry: the layout to a fresh TLS registry.
 *    Every run gets a registry of its own with empty storage (started for it and removed
 *    after), so the blobs really move: no "already exists" and no cross-repository mount.
 * 4. Prints a table of medians: seconds, the ratio ours/skopeo, and peak RSS of both (from
 *    `/usr/bin/time` when installed, else from VmHWM in /proc/PID/status polled while it runs).
 *
 * Flags: `--runs N`, `--size MiB` (uncompressed layer size, default 512), `--plain-dest`
 * (fresh plain-HTTP registries instead of TLS ones), `--json` (also print the figures as JSON).
 * Needs the test bed (`deno run -A scripts/testbed.ts start`; started here when it is not
 * running, and stopped again at the end), skopeo and docker-registry.
 * @module
 */
import { Duplex } from "node:stream";
import { createGzip } from "node:zlib";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { canonicalJson } from "../lib/oci/canonical_json.ts";
import { digestOf, HashingStream } from "../lib/oci/digest.ts";
import { OciLayout } from "../lib/oci/layout.ts";
import { OCI } from "../lib/oci/media_types.ts";
import { createTarStream } from "../lib/tar/mod.ts";
import { startExtraRegistry, testbed } from "../tests/_testbed.ts";
import { isRunning, stop as stopTestbed } from "./testbed.ts";
import { type RegistryInfo, REPO_ROOT, stateDir, type TestbedEnv } from "./testbed/env.ts";
import { median, rssMethod, timed } from "./_bench_measure.ts";

const MiB = 1024 * 1024;
const TAG = "bench";
const SOURCE_REPO = "bench/source";
const CLI = join(REPO_ROOT, "cli.ts");
/**
 * How `deno task kaniko` runs the CLI: a 2 MiB young generation makes V8 collect the blob chunks
 * early (peak RSS of a 277 MiB copy: 93–95 MB, against 110–150 MB with V8's default).
 */
const V8_FLAGS = "--v8-flags=--max-semi-space-size=2";

/** The cached image. */
interface BenchImage {
  version: 1;
  /** Uncompressed size of the one file in the layer. */
  dataSize: number;
  layout: string;
  digest: string;
  layerDigest: string;
  layerSize: number;
}

/** One timed run of one tool. */
interface Sample {
  seconds: number;
  /** Peak resident set size in bytes. */
  peakRss: number;
}

/** Medians of one scenario. */
interface Row {
  scenario: string;
  ours: Sample[];
  skopeo: Sample[];
}

// ---------------------------------------------------------------------------------------------
// The image

/** `size` bytes over 16 symbols from a seeded xorshift32 stream (gzip -6 makes it about half). */
function compressibleData(size: number, seed = 0x9e3779b9): ReadableStream<Uint8Array> {
  let left = size;
  let x = seed >>> 0;
  return new ReadableStream({
    pull(controller) {
      if (left <= 0) return controller.close();
      const n = Math.min(left, MiB);
      const words = new Uint32Array(Math.ceil(n / 4));
      for (let i = 0; i < words.length; i++) {
        x ^= x << 13;
        x >>>= 0;
        x ^= x >>> 17;
        x ^= x << 5;
        x >>>= 0;
        words[i] = x;
      }
      const bytes = new Uint8Array(words.buffer, 0, n);
      for (let i = 0; i < n; i++) bytes[i] = 0x41 + (bytes[i] & 0x0f);
      controller.enqueue(bytes);
      left -= n;
    },
  }, { highWaterMark: 0 });
}

function gzip(stream: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const gz = Duplex.toWeb(createGzip({ level: 6 })) as unknown as ReadableWritablePair<
    Uint8Array,
    Uint8Array
  >;
  return stream.pipeThrough(gz);
}

/** Builds the image once; later runs reuse it when its description matches. */
async function ensureImage(dataSize: number): Promise<BenchImage> {
  const dir = join(stateDir(), "bench");
  const layoutDir = join(dir, `layout-${dataSize / MiB}m`);
  const infoPath = join(dir, `image-${dataSize / MiB}m.json`);
  try {
    const info = JSON.parse(await Deno.readTextFile(infoPath)) as BenchImage;
    const layout = await OciLayout.open(layoutDir);
    const ok = info.version === 1 && info.dataSize === dataSize &&
      await layout.hasBlob({ mediaType: "", digest: info.layerDigest, size: info.layerSize }) &&
      (await layout.tags()).includes(TAG);
    if (ok) return info;
  } catch {
    // not built yet
  }
  console.error(`building a ${dataSize / MiB} MiB single-layer image in ${layoutDir} ...`);
  const t0 = performance.now();
  await Deno.remove(layoutDir, { recursive: true }).catch(() => {});
  await Deno.mkdir(dir, { recursive: true });
  const layout = await OciLayout.open(layoutDir, { create: true });
  const plain = new HashingStream();
  const tar = createTarStream([{
    header: {
      name: "data.bin",
      type: "file",
      size: dataSize,
      mode: 0o644,
      mtime: 1700000000_000000000n,
    },
    body: compressibleData(dataSize),
  }]);
  const layer = await layout.writeBlob(gzip(tar.pipeThrough(plain)));
  const config = await layout.writeBlob(canonicalJson({
    architecture: "amd64",
    os: "linux",
    created: "2024-01-01T00:00:00Z",
    config: { Cmd: ["/bin/sh"] },
    rootfs: { type: "layers", diff_ids: [plain.digest()] },
    history: [{ created: "2024-01-01T00:00:00Z", created_by: "scripts/bench_registry.ts" }],
  }));
  const bytes = canonicalJson({
    schemaVersion: 2,
    mediaType: OCI.manifest,
    config: { mediaType: OCI.config, digest: config.digest, size: config.size },
    layers: [{ mediaType: OCI.layerGzip, digest: layer.digest, size: layer.size }],
  });
  const digest = digestOf(bytes);
  await layout.putManifest({ bytes, mediaType: OCI.manifest, digest }, TAG);
  const info: BenchImage = {
    version: 1,
    dataSize,
    layout: layoutDir,
    digest,
    layerDigest: layer.digest,
    layerSize: layer.size,
  };
  await Deno.writeTextFile(infoPath, JSON.stringify(info, null, 2) + "\n");
  console.error(
    `built in ${((performance.now() - t0) / 1000).toFixed(1)} s: layer ${
      (layer.size / MiB).toFixed(1)
    } MiB gzip, manifest ${digest}`,
  );
  return info;
}

// ---------------------------------------------------------------------------------------------
// Running and measuring

/** Runs `argv`, timing it and measuring its peak RSS; throws when it fails. */
async function measure(argv: string[], env: Record<string, string> = {}): Promise<Sample> {
  const { seconds, peakRss } = await timed(argv, { env });
  return { seconds, peakRss };
}

/** Our CLI's flags to reach a registry (plain HTTP on loopback needs none). */
function ourFlags(env: TestbedEnv, r: RegistryInfo): string[] {
  return r.tls ? [`--registry-certificate=${r.host}=${env.ca}`] : [];
}

function skopeoFlags(env: TestbedEnv, r: RegistryInfo, prefix: "src-" | "dest-"): string[] {
  return r.tls ? [`--${prefix}cert-dir=${env.certDir}`] : [`--${prefix}tls-verify=false`];
}

function skopeoEnv(env: TestbedEnv): Record<string, string> {
  return { XDG_RUNTIME_DIR: join(env.stateDir, "run") };
}

/** The digest a registry serves for `repo:tag`. */
async function servedDigest(env: TestbedEnv, r: RegistryInfo, repo: string): Promise<string> {
  const client = r.tls
    ? Deno.createHttpClient({ caCerts: [await Deno.readTextFile(env.ca)] })
    : undefined;
  try {
    const res = await fetch(`${r.url}/v2/${repo}/manifests/latest`, {
      method: "HEAD",
      headers: { accept: OCI.manifest },
      client,
    } as RequestInit);
    await res.body?.cancel();
    return res.headers.get("docker-content-digest") ?? `HTTP ${res.status}`;
  } finally {
    client?.close();
  }
}

/** Pushes the image to the plain registry unless it already serves it. */
async function ensureSource(env: TestbedEnv, image: BenchImage): Promise<string> {
  const plain = env.registries.plain;
  if (await servedDigest(env, plain, SOURCE_REPO) !== image.digest) {
    console.error(`pushing the image to ${plain.host}/${SOURCE_REPO}:latest ...`);
    await measure([
      Deno.execPath(),
      "run",
      "-A",
      CLI,
      "copy",
      `oci:${image.layout}:${TAG}`,
      `${plain.host}/${SOURCE_REPO}:latest`,
    ]);
  }
  return `${plain.host}/${SOURCE_REPO}:latest`;
}

type Tool = "ours" | "skopeo";

/** One scenario: what to copy from, and the command lines of both tools. */
interface Scenario {
  name: string;
  ours(dest: string, destReg: RegistryInfo): string[];
  skopeo(dest: string, destReg: RegistryInfo): string[];
}

async function runOnce(
  env: TestbedEnv,
  scenario: Scenario,
  tool: Tool,
  image: BenchImage,
  tls: boolean,
): Promise<Sample> {
  // A registry of its own, with empty storage: the blob really moves, and nothing can be
  // mounted or found to exist already.
  await using dest = await startExtraRegistry(env, { tls });
  const repo = `bench/${tool}`;
  const ref = `${dest.info.host}/${repo}:latest`;
  const argv = tool === "ours" ? scenario.ours(ref, dest.info) : scenario.skopeo(ref, dest.info);
  const sample = await measure(argv, tool === "skopeo" ? skopeoEnv(env) : {});
  const served = await servedDigest(env, dest.info, repo);
  if (served !== image.digest) {
    throw new Error(`${tool} ${scenario.name}: destination serves ${served}, not ${image.digest}`);
  }
  return sample;
}

function pad(text: string, width: number, right = false): string {
  return right ? text.padStart(width) : text.padEnd(width);
}

function printTable(rows: Row[], image: BenchImage, runs: number, destKind: string): void {
  const mb = (n: number) => `${(n / 1e6).toFixed(0)} MB`;
  const header = [
    "scenario",
    "ours s",
    "skopeo s",
    "ours/skopeo",
    "ours MB/s",
    "ours peak RSS",
    "skopeo peak RSS",
  ];
  const widths = [28, 8, 9, 12, 10, 14, 16];
  const lines = [header.map((h, i) => pad(h, widths[i], i > 0)).join("  ")];
  for (const row of rows) {
    const ours = median(row.ours.map((s) => s.seconds));
    const skopeo = median(row.skopeo.map((s) => s.seconds));
    lines.push([
      pad(row.scenario, widths[0]),
      pad(ours.toFixed(2), widths[1], true),
      pad(skopeo.toFixed(2), widths[2], true),
      pad((ours / skopeo).toFixed(2), widths[3], true),
      pad((image.layerSize / 1e6 / ours).toFixed(0), widths[4], true),
      pad(mb(median(row.ours.map((s) => s.peakRss))), widths[5], true),
      pad(mb(median(row.skopeo.map((s) => s.peakRss))), widths[6], true),
    ].join("  "));
  }
  console.log(
    `\nImage: one gzip layer of ${(image.layerSize / MiB).toFixed(1)} MiB ` +
      `(${image.dataSize / MiB} MiB uncompressed), ${image.digest}`,
  );
  console.log(
    `Medians of ${runs} runs; each run pushes to a fresh ${destKind} registry. ` +
      `RSS: ${rssMethod()}.\n`,
  );
  console.log(lines.join("\n"));
  console.log("\nAll runs (seconds, peak RSS MB):");
  for (const row of rows) {
    for (const tool of ["ours", "skopeo"] as const) {
      const list = row[tool].map((s) => `${s.seconds.toFixed(2)}s/${(s.peakRss / 1e6).toFixed(0)}`);
      console.log(`  ${pad(row.scenario, 28)} ${pad(tool, 7)} ${list.join("  ")}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const { values: opts } = parseArgs({
    args: Deno.args,
    options: {
      runs: { type: "string", default: "3" },
      size: { type: "string", default: "512" },
      "plain-dest": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (opts.help) {
    console.log(
      "bench_registry: time our copy against skopeo copy (registry → registry, layout → registry)\n" +
        "  --runs <n>    runs per tool and scenario (default: 3)\n" +
        "  --size <MiB>  uncompressed layer size in MiB (default: 512)\n" +
        "  --plain-dest  push to plain-HTTP registries instead of TLS ones\n" +
        "  --json        also print the figures as one JSON line",
    );
    return;
  }
  const runs = Math.max(1, Number(opts.runs));
  const dataSize = Math.max(1, Number(opts.size)) * MiB;
  const tls = !opts["plain-dest"];

  const startedTestbed = !isRunning();
  const env = await testbed();
  try {
    const image = await ensureImage(dataSize);
    const source = await ensureSource(env, image);
    const plain = env.registries.plain;
    const deno = [Deno.execPath(), "run", "-A", V8_FLAGS, CLI, "copy"];
    // Warm Deno's module cache so that no run pays for the first compile.
    await measure([Deno.execPath(), "run", "-A", CLI, "version"]);

    const scenarios: Scenario[] = [
      {
        name: "registry → registry",
        ours: (
          dest,
          reg,
        ) => [...deno, source, dest, ...ourFlags(env, plain), ...ourFlags(env, reg)],
        skopeo: (dest, reg) => [
          "skopeo",
          "copy",
          "-q",
          ...skopeoFlags(env, plain, "src-"),
          ...skopeoFlags(env, reg, "dest-"),
          `docker://${source}`,
          `docker://${dest}`,
        ],
      },
      {
        name: "OCI layout → registry",
        ours: (dest, reg) => [...deno, `oci:${image.layout}:${TAG}`, dest, ...ourFlags(env, reg)],
        skopeo: (dest, reg) => [
          "skopeo",
          "copy",
          "-q",
          ...skopeoFlags(env, reg, "dest-"),
          `oci:${image.layout}:${TAG}`,
          `docker://${dest}`,
        ],
      },
    ];
    const rows: Row[] = [];
    for (const scenario of scenarios) {
      const row: Row = { scenario: scenario.name, ours: [], skopeo: [] };
      for (let i = 0; i < runs; i++) {
        // Alternate which tool goes first, so that neither always runs on a warmer page cache.
        const order: Tool[] = i % 2 === 0 ? ["ours", "skopeo"] : ["skopeo", "ours"];
        for (const tool of order) {
          const sample = await runOnce(env, scenario, tool, image, tls);
          row[tool].push(sample);
          console.error(
            `${scenario.name} run ${i + 1}/${runs} ${tool}: ${sample.seconds.toFixed(2)} s, ` +
              `peak RSS ${(sample.peakRss / 1e6).toFixed(0)} MB`,
          );
        }
      }
      rows.push(row);
    }
    printTable(rows, image, runs, tls ? "TLS" : "plain-HTTP");
    if (opts.json) {
      console.log(JSON.stringify({
        image: { digest: image.digest, layerSize: image.layerSize, dataSize: image.dataSize },
        destination: tls ? "tls" : "plain",
        runs,
        rows: rows.map((r) => ({
          scenario: r.scenario,
          oursSeconds: median(r.ours.map((s) => s.seconds)),
          skopeoSeconds: median(r.skopeo.map((s) => s.seconds)),
          ratio: median(r.ours.map((s) => s.seconds)) / median(r.skopeo.map((s) => s.seconds)),
          oursPeakRss: median(r.ours.map((s) => s.peakRss)),
          skopeoPeakRss: median(r.skopeo.map((s) => s.peakRss)),
        })),
      }));
    }
  } finally {
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
