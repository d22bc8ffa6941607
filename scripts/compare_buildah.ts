/**
 * Comparison suite: builds each case of a corpus of Dockerfiles with buildah and with our CLI and
 * diffs the flattened images (file trees: path, type, mode, owner, size, content hash, link target,
 * hardlink group, device numbers, xattrs; and the image configs).
 *
 *   deno run -A scripts/compare_buildah.ts [CASE…] [--jobs N] [--keep] [--verbose] [--registry HOST]
 *
 * For every case `tests/compare/corpus/<case>/`:
 * 1. The context is a copy of the case directory without `case.json` and `context.sh`; when the
 *    case has a `context.sh` it then runs there (`sh -eu context.sh`, cwd = the context) to make
 *    what git cannot hold: big files, many files, modes, empty directories, archives, odd names.
 * 2. buildah builds it (`buildah --storage-driver vfs --root … --runroot … bud --isolation chroot
 *    --format docker`, one private store for the whole run) and pushes it to the plain test
 *    registry as `compare/buildah-<case>:1`; our CLI builds it (`deno run -A cli.ts --isolation
 *    chroot -c CTX -d REG/compare/ours-<case>:1 --insecure-registry REG`). Both get the build arg
 *    `BASE=<registry>/library/busybox:latest` (every Dockerfile starts `ARG BASE` / `FROM $BASE`),
 *    `REGISTRY=<registry>` (ADD of a URL the registry serves) and the case's own `buildArgs` /
 *    `target` from `case.json`.
 * 3. Both images are copied back with skopeo, unpacked with umoci and walked
 *    (`tests/compare/_flatten.ts`); the accepted differences (`KNOWN_DIFFERENCES` there) are
 *    normalised away and everything else is printed, one readable line per difference.
 *
 * `case.json` (optional): `{"buildArgs": {"K": "V"}, "target": "stage", "buildahDockerfile": F}`;
 * F is a Dockerfile buildah builds instead (for syntax buildah 1.28 lacks: heredocs) that spells
 * out what BuildKit builds from `Dockerfile`.
 * Exit status: 0 when every case matches, 1 when any case differs or fails to build.
 * `--format docker`: buildah's default OCI format drops HEALTHCHECK, ONBUILD and SHELL from the
 * config (with a warning), which Docker keeps; the docker format is Docker's config.
 * Needs root, buildah, skopeo, umoci and the test bed (started when it is not running, and then
 * stopped again at the end).
 * @module
 */
import { basename, join } from "node:path";
import { parseArgs } from "node:util";
import {
  cmd,
  compareImages,
  type Comparison,
  type FlatImage,
  flattenImage,
  formatDifference,
} from "../tests/compare/_flatten.ts";
import { testbed } from "../tests/_testbed.ts";
import { isRunning, stop as stopTestbed } from "./testbed.ts";
import { REPO_ROOT } from "./testbed/env.ts";

/** The corpus shipped with the repository. */
export const CORPUS_DIR = join(REPO_ROOT, "tests", "compare", "corpus");
const CLI = join(REPO_ROOT, "cli.ts");

/** Per-case settings (`case.json`). */
export interface CaseSpec {
  buildArgs?: Record<string, string>;
  target?: string;
  /**
   * A Dockerfile (in the case directory) buildah builds instead of `Dockerfile`, for syntax
   * buildah 1.28 lacks (heredocs): it spells out what BuildKit builds from `Dockerfile`, and says
   * why in its comments.
   */
  buildahDockerfile?: string;
}

/** Outcome of one case. */
export interface CaseResult {
  name: string;
  /** "same": no unexplained difference; "different"; "error": a build or a tool failed. */
  status: "same" | "different" | "error";
  comparison?: Comparison;
  error?: string;
  seconds: { buildah: number; ours: number; total: number };
}

/** Options of {@link compareCorpus}. */
export interface CompareOptions {
  /** `HOST:PORT` of a plain-HTTP registry holding `library/busybox:latest`. */
  registry: string;
  /** Case names (default: every directory of the corpus). */
  cases?: string[];
  corpus?: string;
  /** Cases built at the same time (default 2). */
  jobs?: number;
  /** Keep the work directory (printed). */
  keep?: boolean;
  /**
   * Tag of the pushed images (default `1`: `compare/buildah-<case>:1`, `compare/ours-<case>:1`);
   * a run-specific tag keeps two runs against the same registry apart.
   */
  tag?: string;
  /** Called with each result as it completes. */
  onResult?: (r: CaseResult) => void;
}

/** The case names of a corpus directory, sorted. */
export function listCases(corpus = CORPUS_DIR): string[] {
  return [...Deno.readDirSync(corpus)].filter((e) => e.isDirectory).map((e) => e.name).sort();
}

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const v = await f();
  return [v, (performance.now() - t0) / 1000];
}

/** Copies the case directory into `ctx` (without case.json/context.sh) and runs context.sh. */
async function prepareContext(caseDir: string, ctx: string): Promise<void> {
  await cmd("cp", ["-a", caseDir, ctx]);
  for (const f of ["case.json", "context.sh"]) {
    await Deno.remove(join(ctx, f)).catch(() => {});
  }
  const script = join(caseDir, "context.sh");
  try {
    Deno.statSync(script);
  } catch {
    return;
  }
  await cmd("sh", ["-eu", script], { cwd: ctx });
}

function buildArgFlags(spec: CaseSpec, registry: string): string[] {
  const args = {
    BASE: `${registry}/library/busybox:latest`,
    REGISTRY: registry,
    ...spec.buildArgs,
  };
  return Object.entries(args).flatMap(([k, v]) => ["--build-arg", `${k}=${v}`]);
}

/** buildah's global flags for a private vfs store. */
function buildahGlobal(store: string): string[] {
  return [
    "--storage-driver",
    "vfs",
    "--root",
    join(store, "root"),
    "--runroot",
    join(store, "run"),
  ];
}

async function buildWithBuildah(
  name: string,
  ctx: string,
  spec: CaseSpec,
  opts: CompareOptions,
  store: string,
): Promise<string> {
  const image = `${opts.registry}/compare/buildah-${name}:${opts.tag ?? "1"}`;
  const g = buildahGlobal(store);
  await cmd("buildah", [
    ...g,
    "bud",
    "--isolation",
    "chroot",
    "--tls-verify=false",
    "--format",
    "docker",
    "-q",
    ...buildArgFlags(spec, opts.registry),
    ...(spec.target ? ["--target", spec.target] : []),
    "-f",
    join(ctx, spec.buildahDockerfile ?? "Dockerfile"),
    "-t",
    image,
    ctx,
  ]);
  await cmd("buildah", [...g, "push", "-q", "--tls-verify=false", image]);
  await cmd("buildah", [...g, "rmi", "-f", image], { allowFail: true });
  return image;
}

async function buildWithOurs(
  name: string,
  ctx: string,
  spec: CaseSpec,
  opts: CompareOptions,
): Promise<string> {
  const image = `${opts.registry}/compare/ours-${name}:${opts.tag ?? "1"}`;
  await cmd(Deno.execPath(), [
    "run",
    "-A",
    CLI,
    "--isolation",
    "chroot",
    "-c",
    ctx,
    "-f",
    join(ctx, "Dockerfile"),
    "-d",
    image,
    "--insecure-registry",
    opts.registry,
    ...buildArgFlags(spec, opts.registry),
    ...(spec.target ? ["--target", spec.target] : []),
  ], { cwd: REPO_ROOT });
  return image;
}

async function runCase(
  name: string,
  opts: CompareOptions,
  work: string,
  store: string,
): Promise<CaseResult> {
  const t0 = performance.now();
  const seconds = { buildah: 0, ours: 0, total: 0 };
  const caseDir = join(opts.corpus ?? CORPUS_DIR, name);
  const dir = join(work, name);
  try {
    await Deno.mkdir(dir, { recursive: true });
    let spec: CaseSpec = {};
    try {
      spec = JSON.parse(Deno.readTextFileSync(join(caseDir, "case.json")));
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    const ctx = join(dir, "ctx");
    await prepareContext(caseDir, ctx);
    const dockerfile = Deno.readTextFileSync(join(ctx, "Dockerfile"));
    // buildah first, then ours: they share the two cores better one after the other.
    const [theirRef, tb] = await timed(() => buildWithBuildah(name, ctx, spec, opts, store));
    const [ourRef, to] = await timed(() => buildWithOurs(name, ctx, spec, opts));
    seconds.buildah = tb;
    seconds.ours = to;
    const src = ["--src-tls-verify=false"];
    const [buildah, ours]: FlatImage[] = await Promise.all([
      flattenImage(`docker://${theirRef}`, { work: join(dir, "buildah"), srcFlags: src }),
      flattenImage(`docker://${ourRef}`, { work: join(dir, "ours"), srcFlags: src }),
    ]);
    const comparison = compareImages({ buildah, ours, dockerfile });
    seconds.total = (performance.now() - t0) / 1000;
    return {
      name,
      status: comparison.differences.length === 0 ? "same" : "different",
      comparison,
      seconds,
    };
  } catch (e) {
    seconds.total = (performance.now() - t0) / 1000;
    return { name, status: "error", error: e instanceof Error ? e.message : String(e), seconds };
  } finally {
    if (!opts.keep) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Builds and compares the cases; returns one result per case, in case order. */
export async function compareCorpus(opts: CompareOptions): Promise<CaseResult[]> {
  const cases = opts.cases ?? listCases(opts.corpus);
  const work = await Deno.makeTempDir({ prefix: "compare-buildah-" });
  const store = join(work, ".buildah");
  const results: CaseResult[] = new Array(cases.length);
  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const i = next++;
      results[i] = await runCase(cases[i], opts, work, store);
      opts.onResult?.(results[i]);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, opts.jobs ?? 2) }, worker));
  } finally {
    await cmd("buildah", [...buildahGlobal(store), "rmi", "-a", "-f"], { allowFail: true });
    if (opts.keep) console.error(`work directory kept: ${work}`);
    else await Deno.remove(work, { recursive: true }).catch(() => {});
  }
  return results;
}

/** The report of one case: a status line, then one line per difference (and, verbose, the rest). */
export function formatResult(r: CaseResult, verbose = false): string {
  const t = `buildah ${r.seconds.buildah.toFixed(1)}s, ours ${r.seconds.ours.toFixed(1)}s`;
  const lines: string[] = [];
  if (r.status === "error") {
    lines.push(`ERROR ${r.name} (${r.seconds.total.toFixed(1)}s)`);
    lines.push(...r.error!.split("\n").map((l) => `    ${l}`));
    return lines.join("\n");
  }
  const c = r.comparison!;
  const n = c.differences.length;
  lines.push(
    `${n === 0 ? "same" : "DIFF"} ${r.name} (${t}; ${c.explained.length} accepted` +
      `${n ? `, ${n} unexplained` : ""})`,
  );
  for (const d of c.differences) lines.push(`    ${formatDifference(d)}`);
  if (verbose) { for (const e of c.explained) lines.push(`    (accepted) ${e}`); }
  return lines.join("\n");
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    options: {
      jobs: { type: "string", default: "2" },
      keep: { type: "boolean", default: false },
      verbose: { type: "boolean", short: "v", default: false },
      registry: { type: "string" },
      corpus: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
    allowPositionals: true,
  });
  if (values.help) {
    console.log(
      "usage: deno run -A scripts/compare_buildah.ts [CASE…] [--jobs N] [--keep] [--verbose] " +
        "[--registry HOST:PORT] [--corpus DIR]",
    );
    Deno.exit(0);
  }
  const corpus = values.corpus ?? CORPUS_DIR;
  const known = listCases(corpus);
  const cases = positionals.map((c) => basename(c));
  for (const c of cases) {
    if (!known.includes(c)) {
      console.error(`unknown case ${c}; the corpus has: ${known.join(" ")}`);
      Deno.exit(2);
    }
  }
  const wasRunning = values.registry !== undefined || isRunning();
  let failed = 0;
  try {
    const registry = values.registry ?? (await testbed()).registries.plain.host;
    const t0 = performance.now();
    const results = await compareCorpus({
      registry,
      cases: cases.length ? cases : undefined,
      corpus,
      jobs: Number(values.jobs),
      keep: values.keep,
      onResult: (r) => console.log(formatResult(r, values.verbose)),
    });
    failed = results.filter((r) => r.status !== "same").length;
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    console.log(
      `\n${results.length - failed}/${results.length} cases match buildah (${secs}s)` +
        (failed
          ? `; differing or failing: ${
            results.filter((r) => r.status !== "same").map((r) => r.name).join(" ")
          }`
          : ""),
    );
  } finally {
    if (!wasRunning) await stopTestbed();
  }
  Deno.exit(failed ? 1 : 0);
}
