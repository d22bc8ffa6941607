/**
 * Layer blob benchmark: `writeLayer` throughput, ratio and peak RSS per compression and level,
 * `decompress` throughput, and the flat-memory check on a 1 GiB layer.
 *
 *     deno run -A bench/layer_bench.ts [--size MB] [--runs N] [--configs none,gzip:1,...]
 *                                      [--rss-gib N] [--source usr|synthetic] [--json]
 *
 * Sources: `usr` (default) is a realistic layer: every 20th regular file of `/usr` (picked by a
 * hash of the path, so the same files each time; ELF binaries, shared libraries, headers, text,
 * locales, already-compressed files) up to `--size` MB, with bodies read as the snapshotter
 * would (small files whole, big ones as streams). `synthetic` is seeded pseudo-random text that
 * compresses about 2:1, produced by a generator. The files are read once before timing, so the
 * page cache is warm.
 *
 * Every run is a child process (`deno run --v8-flags=--max-semi-space-size=2`, as `deno task
 * kaniko` runs), so its peak RSS (VmHWM) is its own. MB/s are tar (uncompressed) megabytes per
 * second of wall time; `cpu` is user+system CPU seconds of the child. Medians over `--runs`.
 *
 * Last, the RSS check writes a `--rss-gib` GiB (default 1) synthetic layer with gzip and zstd at
 * their default levels and fails (exit 1) if peak RSS reaches 200 MB. `--rss-gib 0` skips it.
 * @module
 */
import { parseArgs } from "node:util";
import { decompress, writeLayer } from "../lib/layer/mod.ts";
import type { Compression } from "../lib/layer/mod.ts";
import type { TarWriteEntry } from "../lib/tar/mod.ts";

const MB = 1e6;
const RSS_LIMIT = 200 * MB;
const SELF = new URL(import.meta.url).pathname;

interface Config {
  compression: Compression;
  level?: number;
}

interface Sample {
  seconds: number;
  cpu: number;
  tarBytes: number;
  blobBytes: number;
  digest: string;
  rss: number;
  decompressSeconds?: number;
}

function parseConfig(s: string): Config {
  const [compression, level] = s.split(":");
  if (!["gzip", "zstd", "none"].includes(compression)) throw new Error(`bad config ${s}`);
  return { compression: compression as Compression, level: level ? Number(level) : undefined };
}

function label(c: Config): string {
  return c.level === undefined ? c.compression : `${c.compression}:${c.level}`;
}

// ---------------------------------------------------------------- sources

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

interface Picked {
  path: string;
  name: string;
  size: number;
  mode: number;
  mtime: bigint;
}

/** Every 20th file of /usr (by path hash), sorted walk, up to `limit` bytes. */
function pickUsrFiles(limit: number): Picked[] {
  const files: Picked[] = [];
  let total = 0;
  const walk = (dir: string) => {
    let list: Deno.DirEntry[];
    try {
      list = [...Deno.readDirSync(dir)].sort((a, b) => a.name < b.name ? -1 : 1);
    } catch {
      return;
    }
    for (const e of list) {
      if (total >= limit) return;
      const path = `${dir}/${e.name}`;
      if (e.isDirectory) walk(path);
      else if (e.isFile && fnv1a(path) % 20 === 0) {
        const st = Deno.statSync(path);
        if (st.size > 64 * MB) continue;
        files.push({
          path,
          name: path.slice(1),
          size: st.size,
          mode: (st.mode ?? 0o644) & 0o7777,
          mtime: BigInt(st.mtime?.getTime() ?? 0) * 1_000_000n,
        });
        total += st.size;
      }
    }
  };
  walk("/usr");
  return files;
}

async function* usrEntries(files: Picked[]): AsyncGenerator<TarWriteEntry> {
  for (const f of files) {
    const header = {
      name: f.name,
      type: "file" as const,
      size: f.size,
      mode: f.mode,
      mtime: f.mtime,
    };
    if (f.size < 1 << 20) yield { header, body: readSmall(f.path, f.size) };
    else yield { header, body: (await Deno.open(f.path)).readable };
  }
}

/** A small file read whole into a buffer of its size (`Deno.readFile` is 2–4 times slower). */
function readSmall(path: string, size: number): Uint8Array {
  using file = Deno.openSync(path);
  const buf = new Uint8Array(size);
  let off = 0;
  while (off < size) {
    const n = file.readSync(buf.subarray(off));
    if (n === null) throw new Error(`${path} shrank while reading`);
    off += n;
  }
  return buf;
}

/**
 * Seeded pseudo-random text that compresses about 2:1: files of 1–8 MiB whose 64 KiB chunks are
 * copied from random offsets of an 8 MiB pool of random letters, spaces and newlines, produced by
 * a generator so that nothing but the chunk in flight is in memory.
 */
async function* syntheticEntries(total: number): AsyncGenerator<TarWriteEntry> {
  let x = 0x9e3779b9;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  const pool = new Uint8Array(8 << 20);
  for (let i = 0; i < pool.length; i++) {
    const r = next();
    pool[i] = (r & 0x700) === 0 ? 0x20 : (r & 0x3f00) === 0x3f00 ? 0x0a : 0x61 + (r & 7);
  }
  let made = 0;
  for (let i = 0; made < total; i++) {
    const size = Math.min(total - made, (1 + (next() % 8)) << 20);
    made += size;
    let left = size;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        const n = Math.min(left, 65536);
        const at = next() % (pool.length - n);
        c.enqueue(pool.slice(at, at + n));
        left -= n;
        if (left === 0) c.close();
      },
    }, { highWaterMark: 0 });
    yield { header: { name: `data/${String(i).padStart(5, "0")}.txt`, type: "file", size }, body };
  }
}

// ---------------------------------------------------------------- child

function peakRss(): number {
  const status = Deno.readTextFileSync("/proc/self/status");
  const m = status.match(/VmHWM:\s+(\d+) kB/);
  return m ? Number(m[1]) * 1024 : Deno.memoryUsage().rss;
}

function cpuSeconds(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks
}

async function child(config: Config, source: string, size: number, dir: string, decomp: boolean) {
  const entries = source === "usr" ? usrEntries(pickUsrFiles(size)) : syntheticEntries(size);
  let tarBytes = 0;
  async function* counted() {
    for await (const e of entries) {
      tarBytes += e.header.size ?? 0;
      yield e;
    }
  }
  const cpu0 = cpuSeconds();
  const t0 = performance.now();
  const blob = await writeLayer(counted(), { dir, format: "oci", ...config });
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds() - cpu0;
  const sample: Sample = {
    seconds,
    cpu,
    tarBytes,
    blobBytes: blob.size,
    digest: blob.digest,
    rss: peakRss(),
  };
  if (decomp) {
    const t1 = performance.now();
    const file = await Deno.open(blob.path);
    for await (const _ of decompress(file.readable)) { /* count nothing: throughput only */ }
    sample.decompressSeconds = (performance.now() - t1) / 1000;
  }
  await Deno.remove(blob.path);
  console.log(JSON.stringify(sample));
}

// ---------------------------------------------------------------- parent

async function runChild(args: string[]): Promise<Sample> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--v8-flags=--max-semi-space-size=2", SELF, "--child", ...args],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`bench child failed: ${args.join(" ")}`);
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  return JSON.parse(lines[lines.length - 1]);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main() {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      child: { type: "boolean", default: false },
      config: { type: "string" },
      configs: { type: "string", default: "none,gzip:1,gzip:6,zstd:1,zstd:3" },
      size: { type: "string", default: "300" },
      runs: { type: "string", default: "3" },
      source: { type: "string", default: "usr" },
      dir: { type: "string" },
      decompress: { type: "boolean", default: false },
      "rss-gib": { type: "string", default: "1" },
      json: { type: "boolean", default: false },
    },
  });
  const size = Number(values.size) * MB;
  if (values.child) {
    await child(parseConfig(values.config!), values.source!, size, values.dir!, values.decompress!);
    return;
  }
  const dir = await Deno.makeTempDir({ prefix: "layer-bench-" });
  try {
    const configs = values.configs!.split(",").map(parseConfig);
    const runs = Number(values.runs);
    if (values.source === "usr") {
      // Warm the page cache so that every run reads the same way.
      for (const f of pickUsrFiles(size)) await Deno.readFile(f.path);
    }
    const results: Record<string, unknown>[] = [];
    console.log(
      `source ${values.source}, ${values.size} MB, ${runs} runs each (median), ` +
        `${navigator.hardwareConcurrency} CPUs, Deno ${Deno.version.deno}`,
    );
    console.log(
      "config     | tar MB/s | CPU MB/s | ratio  | blob MB | peak RSS | decompress MB/s | same bytes",
    );
    for (const config of configs) {
      const samples: Sample[] = [];
      for (let i = 0; i < runs; i++) {
        samples.push(
          await runChild([
            "--config",
            label(config),
            "--source",
            values.source!,
            "--size",
            values.size!,
            "--dir",
            dir,
            ...(config.compression !== "none" ? ["--decompress"] : []),
          ]),
        );
      }
      const tar = samples[0].tarBytes;
      const row = {
        config: label(config),
        tarMB: tar / MB,
        mbPerSecond: median(samples.map((s) => tar / MB / s.seconds)),
        cpuMbPerSecond: median(samples.map((s) => tar / MB / s.cpu)),
        ratio: samples[0].blobBytes / tar,
        blobMB: samples[0].blobBytes / MB,
        peakRssMB: Math.max(...samples.map((s) => s.rss)) / MB,
        decompressMbPerSecond: samples[0].decompressSeconds === undefined
          ? undefined
          : median(samples.map((s) => tar / MB / s.decompressSeconds!)),
        identical: new Set(samples.map((s) => s.digest)).size === 1,
      };
      results.push(row);
      console.log(
        [
          row.config.padEnd(10),
          row.mbPerSecond.toFixed(0).padStart(8),
          row.cpuMbPerSecond.toFixed(0).padStart(8),
          row.ratio.toFixed(4),
          row.blobMB.toFixed(1).padStart(7),
          `${row.peakRssMB.toFixed(0)} MB`.padStart(8),
          (row.decompressMbPerSecond?.toFixed(0) ?? "-").padStart(15),
          runs > 1 ? (row.identical ? "yes" : "NO") : "-",
        ].join(" | "),
      );
    }
    let rssOk = true;
    const gib = Number(values["rss-gib"]);
    if (gib > 0) {
      console.log(`\nflat-memory check: ${gib} GiB synthetic layer`);
      for (const config of [{ compression: "gzip" as const }, { compression: "zstd" as const }]) {
        const s = await runChild([
          "--config",
          label(config),
          "--source",
          "synthetic",
          "--size",
          String(gib * 1024 * 1024 * 1024 / MB),
          "--dir",
          dir,
        ]);
        const ok = s.rss < RSS_LIMIT;
        rssOk &&= ok;
        results.push({
          rssCheck: label(config),
          tarMB: s.tarBytes / MB,
          peakRssMB: s.rss / MB,
          ok,
        });
        console.log(
          `${label(config).padEnd(6)} ${(s.tarBytes / MB).toFixed(0)} MB tar in ${
            s.seconds.toFixed(1)
          } s (${(s.tarBytes / MB / s.seconds).toFixed(0)} MB/s, ratio ${
            (s.blobBytes / s.tarBytes).toFixed(3)
          }): peak RSS ${(s.rss / MB).toFixed(0)} MB ${ok ? "< 200 MB: ok" : ">= 200 MB: FAIL"}`,
        );
      }
    }
    if (values.json) console.log(JSON.stringify(results));
    if (!rssOk) Deno.exitCode = 1;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await main();
