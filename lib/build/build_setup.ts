/**
 * What a build sets up before its first stage: the output format and its usage checks, the
 * reproducible epoch, the work directory and stage roots, the snapshot ignore list, and the
 * build-wide {@link BuildEnv}.
 * @module
 */
import type { LayerMemo } from "../layer/mod.ts";
import { join } from "node:path";
import type { BuildOptions, Isolation } from "../cli/options.ts";
import type { BuildContext } from "../context/mod.ts";
import type { BuildPlan } from "../dockerfile/plan.ts";
import { KanikoError } from "../errors.ts";
import { compressionLevel } from "../layer/mod.ts";
import type { RegistrySession } from "../registry/session.ts";
import { ignorePaths } from "../snapshot/mod.ts";
import type { BaseImages } from "./base.ts";
import type { BuildEnv } from "./build_env.ts";
import { FileBlobSource } from "./image.ts";
import { secretSources } from "./mounts.ts";
import { Progress } from "./progress.ts";

/**
 * The media types of the output: Docker's with `--oci-mode=docker` (or
 * `--legacy-manifest-list`), else OCI; zstd needs OCI. Also checks `--compression-level`
 * against the algorithm, so that a bad value is a usage error before anything is pulled.
 */
export function outputFormat(opts: BuildOptions): "oci" | "docker" {
  const format = opts.ociMode === "docker" || opts.legacyManifestList ? "docker" : "oci";
  if (format === "docker" && opts.compression === "zstd") {
    throw new KanikoError("--compression=zstd needs OCI media types", {
      exitCode: 2,
      hint: "use --oci-mode=oci (or auto), or --compression=gzip",
    });
  }
  if (opts.compressionLevel > 0) {
    try {
      compressionLevel(opts.compression, opts.compressionLevel);
    } catch (e) {
      if (!(e instanceof KanikoError)) throw e;
      throw new KanikoError(`--compression-level: ${e.message}`, { exitCode: 2, hint: e.hint });
    }
  }
  return format;
}

/** Seconds since the epoch for timestamps: SOURCE_DATE_EPOCH, else 0 with --reproducible. */
export function reproducibleEpoch(opts: BuildOptions): number | undefined {
  const sde = Deno.env.get("SOURCE_DATE_EPOCH");
  if (sde !== undefined && sde !== "") {
    const n = Number(sde);
    if (!Number.isInteger(n) || n < 0) {
      throw new KanikoError(`SOURCE_DATE_EPOCH="${sde}" is not a number of seconds`, {
        exitCode: 2,
      });
    }
    return n;
  }
  return opts.reproducible ? 0 : undefined;
}

/** The `created` time of configs and history (RFC 3339, whole seconds): the epoch, or now. */
export function createdTime(opts: BuildOptions): string {
  const epoch = reproducibleEpoch(opts);
  return new Date((epoch ?? Date.now() / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** A new work directory: under `--kaniko-dir` for `none`, else a private temporary one. */
export async function workDirectory(opts: BuildOptions, isolation: Isolation): Promise<string> {
  if (isolation === "none") {
    await Deno.mkdir(opts.kanikoDir, { recursive: true });
    return await Deno.makeTempDir({ dir: opts.kanikoDir, prefix: "build-" });
  }
  return await Deno.makeTempDir({ prefix: "kaniko-build-" });
}

/** A private root for a stage: 0755 like any `/`. */
export async function stageRoot(work: string, index: number): Promise<string> {
  const root = await Deno.makeTempDir({ dir: work, prefix: `stage-${index}-` });
  await Deno.chmod(root, 0o755);
  return root;
}

/** What {@link buildEnv} needs besides the options. */
export interface EnvParts {
  plan: BuildPlan;
  context: BuildContext;
  session: RegistrySession;
  bases: BaseImages;
  isolation: Isolation;
  work: string;
  format: "oci" | "docker";
  created: string;
  layerMemo?: LayerMemo;
}

/** The build-wide environment of the stage builders. */
export async function buildEnv(opts: BuildOptions, parts: EnvParts): Promise<BuildEnv> {
  const dirs = { layers: join(parts.work, "layers"), tmp: join(parts.work, "tmp") };
  await Deno.mkdir(dirs.layers, { recursive: true });
  await Deno.mkdir(dirs.tmp, { recursive: true });
  const epoch = reproducibleEpoch(opts);
  return {
    opts,
    plan: parts.plan,
    context: parts.context,
    session: parts.session,
    bases: parts.bases,
    stages: new Map(),
    isolation: parts.isolation,
    layersDir: dirs.layers,
    tmpDir: dirs.tmp,
    cacheDir: join(opts.kanikoDir, "cache", "run"),
    ignore: ignoreList(opts, parts.isolation, parts.work),
    compression: opts.compression,
    compressionLevel: opts.compressionLevel > 0 ? opts.compressionLevel : undefined,
    format: parts.format,
    mtime: epoch === undefined ? undefined : BigInt(epoch) * 1_000_000_000n,
    created: parts.created,
    blobs: new FileBlobSource(),
    layerMemo: parts.layerMemo,
    secrets: secretSources(opts.secrets),
    progress: new Progress([]),
  };
}

/** The paths never snapshotted: Kaniko's ignore list in `none` mode, little in `chroot`. */
function ignoreList(opts: BuildOptions, isolation: Isolation, work: string) {
  const paths = opts.ignorePaths.map((p) => p.replace(/^\/+|\/+$/g, ""));
  if (isolation === "none") {
    paths.push(
      opts.kanikoDir.replace(/^\/+/, ""),
      work.replace(/^\/+/, ""),
      "etc/mtab",
      "proc",
      "sys",
      "dev",
    );
    if (opts.ignoreVarRun) paths.push("var/run");
    paths.push(...mountPoints());
  }
  return ignorePaths(paths.filter(Boolean));
}

/** Every mount point of this process's mount namespace except `/`. */
function mountPoints(): string[] {
  try {
    return Deno.readTextFileSync("/proc/self/mountinfo").split("\n")
      .map((line) => line.split(" ")[4])
      .filter((p) => p && p !== "/")
      .map((p) => p.replace(/\\(\d{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8))))
      .map((p) => p.replace(/^\/+/, ""));
  } catch {
    return [];
  }
}
