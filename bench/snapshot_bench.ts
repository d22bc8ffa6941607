/**
 * Snapshot benchmark: scan, diff and layer-writing times on
 *   1. a 10,000-file tree (100 directories × 100 files of 1 KiB),
 *   2. a copy of /usr (`cp -a`, ~140k entries), scanned whole,
 *   3. "a RUN that creates 10,000 files" on that copy: scan before, create the files, scan after,
 *      diff, then the layer (tar only, and gzip through `lib/layer`),
 *   4. tar throughput of `entriesForPaths` over ~400 MB of the copy's files,
 * with `find -printf` (stat of every entry) and GNU tar as yardsticks. Each figure is the
 * median of `--runs` runs (wall time; CPU time of this process in brackets, which is steadier
 * on a shared machine).
 *
 *   deno run -A --v8-flags=--expose-gc bench/snapshot_bench.ts [--runs 5] [--dir /tmp] [--usr /usr]
 *     [--usr-copy DIR] [--keep]
 *
 * `--usr-copy DIR` uses an existing copy of /usr (left in place) instead of copying it again;
 * the RUN step's files go to DIR/local/bench-run and are removed afterwards.
 * @module
 */
import process from "node:process";
import { join } from "node:path";
import { writeLayer } from "../lib/layer/mod.ts";
import {
  diffTrees,
  entriesForPaths,
  layerEntries,
  scanTree,
  scanTreeNoSettle,
  type TreeState,
} from "../lib/snapshot/mod.ts";
import { encodeEntry, type TarWriteEntry } from "../lib/tar/mod.ts";

const args = Deno.args;
const flag = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const RUNS = Number(flag("runs", "5"));
const BASE = flag("dir", Deno.env.get("TMPDIR") ?? "/tmp");
const USR = flag("usr", "/usr");
const KEEP = args.includes("--keep");
const USR_COPY = flag("usr-copy", "");
const gcOnce = (globalThis as { gc?: () => void }).gc;
/** Full collections with pauses between, so freed ArrayBuffers leave `external` too. */
async function gc(): Promise<void> {
  if (!gcOnce) return;
  for (let i = 0; i < 3; i++) {
    gcOnce();
    await new Promise((r) => setTimeout(r, 100));
  }
}

const work = Deno.makeTempDirSync({ dir: BASE, prefix: "kaniko-snapshot-bench-" });
const rows: string[][] = [];

interface Sample {
  wall: number;
  cpu: number;
}

/** Runs `fn` RUNS times (after `setup` each time), returns the median wall and CPU ms. */
async function measure(
  fn: () => Promise<unknown> | unknown,
  setup?: () => Promise<unknown> | unknown,
): Promise<Sample> {
  const walls: number[] = [];
  const cpus: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    await setup?.();
    const c = process.cpuUsage();
    const t = performance.now();
    await fn();
    walls.push(performance.now() - t);
    const u = process.cpuUsage(c);
    cpus.push((u.user + u.system) / 1000);
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return { wall: median(walls), cpu: median(cpus) };
}

function row(what: string, s: Sample, extra = "") {
  rows.push([what, `${s.wall.toFixed(0)} ms`, `(${s.cpu.toFixed(0)} ms cpu)`, extra]);
  console.error(`${what}: ${s.wall.toFixed(0)} ms (${s.cpu.toFixed(0)} cpu) ${extra}`);
}

async function sh(script: string): Promise<void> {
  const out = await new Deno.Command("bash", { args: ["-c", script], stderr: "inherit" }).output();
  if (!out.success) throw new Error(`failed: ${script}`);
}

/** Times an external command (wall only). */
async function external(what: string, script: string, extra = "") {
  const s = await measure(() => sh(script));
  rows.push([what, `${s.wall.toFixed(0)} ms`, "", extra]);
  console.error(`${what}: ${s.wall.toFixed(0)} ms ${extra}`);
}

const KIB = new Uint8Array(1024).fill(0x61);

/** 100 directories × 100 files of 1 KiB under `dir`. */
function makeFiles(dir: string): void {
  for (let d = 0; d < 100; d++) {
    const sub = join(dir, `d${d}`);
    Deno.mkdirSync(sub, { recursive: true });
    for (let f = 0; f < 100; f++) Deno.writeFileSync(join(sub, `f${f}.txt`), KIB);
  }
}

/** Consumes a layer as tar bytes; returns their count. */
async function tarBytes(entries: AsyncIterable<TarWriteEntry>): Promise<number> {
  let n = 0;
  for await (const { header, body } of entries) {
    for await (const chunk of encodeEntry(header, body)) n += chunk.length;
  }
  return n + 1024;
}

try {
  // 1. 10k files.
  const small = join(work, "small");
  makeFiles(small);
  let state: TreeState | undefined;
  row("scan 10k-file tree (10,101 entries)", await measure(() => state = scanTreeNoSettle(small)));
  row("scanTree incl. clock settle, 10k", await measure(() => scanTree(small)));
  await external(
    "find -printf (stat each), 10k",
    `find ${small} -printf '%i %n %m %U %G %s %T@ %C@\\n' >/dev/null`,
  );
  const s10 = state!;
  row(
    "diff 10k vs itself",
    await measure(() => diffTrees(s10, s10, small)),
    `${(s10.byteLength / s10.size).toFixed(0)} B/path`,
  );

  // 2. A copy of /usr.
  const usr = USR_COPY || join(work, "usr");
  if (!USR_COPY) {
    const t0 = performance.now();
    await sh(`cp -a ${USR} ${usr}`);
    console.error(`cp -a ${USR}: ${(performance.now() - t0).toFixed(0)} ms`);
  }
  await gc();
  const heap0 = Deno.memoryUsage();
  let big: TreeState | undefined = scanTreeNoSettle(usr);
  await gc();
  const heap1 = Deno.memoryUsage();
  const grew = (heap1.heapUsed + heap1.external) - (heap0.heapUsed + heap0.external);
  row(
    `scan usr copy (${big.size} entries)`,
    await measure(() => big = scanTreeNoSettle(usr)),
    `${(big.byteLength / big.size).toFixed(0)} B/path in arrays; heap+external grew ${
      (grew / big.size).toFixed(0)
    } B/path`,
  );
  await external(
    `find -printf (stat each), usr`,
    `find ${usr} -printf '%i %n %m %U %G %s %T@ %C@\\n' >/dev/null`,
  );
  const bigState = big!;
  row("diff usr vs itself (no change)", await measure(() => diffTrees(bigState, bigState, usr)));

  // 3. A RUN that creates 10,000 files, on the usr copy.
  const created = join(usr, "local", "bench-run");
  let before: TreeState | undefined;
  let after: TreeState | undefined;
  let changes: Awaited<ReturnType<typeof diffTrees>> = [];
  const reset = async () => {
    await Deno.remove(created, { recursive: true }).catch(() => {});
    before = await scanTree(usr);
    makeFiles(created);
  };
  row(
    "  RUN: scan after (150k entries)",
    await measure(async () => after = await scanTree(usr), reset),
  );
  row(
    "  RUN: diff",
    await measure(async () => changes = await diffTrees(before!, after!, usr)),
    `${changes.length} changes`,
  );
  let bytes = 0;
  row(
    "  RUN: layer entries → tar (uncompressed)",
    await measure(async () => bytes = await tarBytes(layerEntries(usr, changes))),
    `${(bytes / 1e6).toFixed(1)} MB`,
  );
  const blobs = join(work, "blobs");
  Deno.mkdirSync(blobs);
  row(
    "  RUN: layer entries → writeLayer gzip",
    await measure(() =>
      writeLayer(layerEntries(usr, changes), { dir: blobs, compression: "gzip", format: "oci" })
    ),
  );
  row(
    "  RUN: layer entries → writeLayer gzip, mtimes in seconds",
    await measure(() =>
      writeLayer(layerEntries(usr, changes, { mtimeResolution: "s" }), {
        dir: blobs,
        compression: "gzip",
        format: "oci",
      })
    ),
  );
  const total = await measure(async () => {
    const a = await scanTree(usr);
    const c = await diffTrees(before!, a, usr);
    await writeLayer(layerEntries(usr, c), { dir: blobs, compression: "gzip", format: "oci" });
  });
  row("  RUN: total after-scan + diff + gzip layer", total);
  await external(
    "  GNU tar -czf of the 10k new files",
    `tar -C ${usr} -czf ${join(work, "gnu.tgz")} local/bench-run`,
  );

  // 4. Tar throughput over ~400 MB of real files.
  const paths: string[] = [];
  let sum = 0;
  for (const p of bigState.paths()) {
    const m = bigState.get(p)!;
    if (m.type !== "file") continue;
    paths.push(p);
    sum += m.size;
    if (sum > 400e6) break;
  }
  let tarSize = 0;
  const tput = await measure(async () => tarSize = await tarBytes(entriesForPaths(usr, paths)));
  row(
    `tar of ${paths.length} files (entriesForPaths, uncompressed)`,
    tput,
    `${(tarSize / 1e6 / (tput.wall / 1000)).toFixed(0)} MB/s, ${
      (paths.length / (tput.wall / 1000)).toFixed(0)
    } files/s`,
  );
  await Deno.writeTextFile(join(work, "list"), paths.join("\n"));
  await external(
    "GNU tar -cf /dev/null of the same files",
    `tar -C ${usr} -cf - -T ${join(work, "list")} | cat >/dev/null`,
  );
} finally {
  if (USR_COPY) {
    await Deno.remove(join(USR_COPY, "local", "bench-run"), { recursive: true }).catch(() => {});
  }
  if (!KEEP) await Deno.remove(work, { recursive: true });
  else console.error(`kept ${work}`);
}

const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i].length)));
console.log(`snapshot benchmark, ${RUNS} runs each (medians), ${new Date().toISOString()}`);
console.log(`load average: ${Deno.loadavg().map((x) => x.toFixed(2)).join(" ")}`);
for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd());
