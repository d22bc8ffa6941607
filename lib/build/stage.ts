/**
 * Building one stage: its root from the base (an image unpacked, an earlier stage's root copied,
 * or nothing for `scratch`), then each step in order — RUN in the sandbox with a snapshot diff,
 * COPY/ADD with exactly the paths they touched, metadata steps on the config — each step that
 * changed files adding one layer.
 * @module
 */
import { KanikoError } from "../errors.ts";
import type { PlannedInstruction, PlannedStage } from "../dockerfile/plan.ts";
import { type LayerBlob, writeLayer } from "../layer/mod.ts";
import { DOCKER, OCI } from "../oci/media_types.ts";
import { unpackImage } from "../rootfs/image.ts";
import { diffTrees, scanTree, type TreeState } from "../snapshot/mod.ts";
import { layerEntries } from "../snapshot/entries.ts";
import type { BaseImage } from "./base.ts";
import type { BuildEnv } from "./build_env.ts";
import { addHistory, type ConfigState, scratchConfig, setLabels, startState } from "./config.ts";
import type { LayerRef } from "./image.ts";
import { stepHandlers, type StepOutcome } from "./steps.ts";
import type { TarWriteEntry } from "../tar/mod.ts";

/** What a built stage leaves for later stages and the outputs. */
export interface StageResult {
  index: number;
  root: string;
  state: ConfigState;
  layers: LayerRef[];
}

/** A stage being built: its root, config, layers and the last tree scan. */
export class StageBuild {
  readonly stage: PlannedStage;
  readonly root: string;
  readonly env: BuildEnv;
  state!: ConfigState;
  layers: LayerRef[] = [];
  /** The tree as of the last scan, or undefined when a step changed it since (COPY, WORKDIR). */
  tree?: TreeState;
  /** The tree when the stage's own steps began (single-snapshot mode). */
  baseTree?: TreeState;

  constructor(stage: PlannedStage, root: string, env: BuildEnv) {
    this.stage = stage;
    this.root = root;
    this.env = env;
  }

  /** Builds the stage; returns what later stages and outputs need. */
  async build(): Promise<StageResult> {
    await this.#prepareBase();
    this.state.config.created = this.env.created;
    if (Object.keys(this.env.opts.labels).length) {
      setLabels(this.state, Object.entries(this.env.opts.labels));
    }
    if (this.env.opts.singleSnapshot) this.baseTree = await this.scan();
    const steps = [...this.stage.triggers, ...this.stage.instructions];
    for (const [i, step] of steps.entries()) {
      await this.env.progress.step(this.stage, i, steps.length, step, () => this.#step(step));
    }
    if (this.env.opts.singleSnapshot) await this.#singleSnapshot();
    return { index: this.stage.index, root: this.root, state: this.state, layers: this.layers };
  }

  async #step(step: PlannedInstruction): Promise<void> {
    if (step.error) throw step.error;
    const handler = stepHandlers[step.keyword];
    if (!handler) {
      throw new KanikoError(
        `${this.env.plan.file}:${step.line}: unknown instruction ${step.keyword}`,
      );
    }
    const outcome: StepOutcome = await handler(this, step);
    const layer = outcome.entries && !this.env.opts.singleSnapshot
      ? await this.commit(outcome.entries)
      : undefined;
    addHistory(this.state, {
      createdBy: outcome.createdBy,
      emptyLayer: !layer,
      created: this.env.created,
    });
  }

  /** Scans the root (the ignore list applied). */
  scan(): Promise<TreeState> {
    return scanTree(this.root, { ignore: this.env.ignore });
  }

  /** The tree before a RUN: the last scan, or a new one. */
  async treeBefore(): Promise<TreeState> {
    this.tree ??= await this.scan();
    return this.tree;
  }

  /** Writes a layer from tar entries and appends it; undefined when there were no entries. */
  async commit(entries: AsyncIterable<TarWriteEntry>): Promise<LayerRef | undefined> {
    let any = false;
    async function* counted() {
      for await (const e of entries) {
        any = true;
        yield e;
      }
    }
    const options = {
      dir: this.env.layersDir,
      compression: this.env.compression,
      level: this.env.compressionLevel,
      format: this.env.format,
    };
    const blob: LayerBlob = this.env.layerMemo
      ? await this.env.layerMemo.write(counted(), options)
      : await writeLayer(counted(), options);
    if (!any) {
      await Deno.remove(blob.path).catch(() => {});
      return undefined;
    }
    this.env.blobs.add(blob.digest, blob.path);
    const ref: LayerRef = {
      descriptor: { mediaType: blob.mediaType, digest: blob.digest, size: blob.size },
      diffId: blob.diffId,
      source: this.env.blobs,
    };
    this.layers.push(ref);
    return ref;
  }

  async #singleSnapshot(): Promise<void> {
    const changes = await diffTrees(this.baseTree!, await this.scan(), this.root);
    if (changes.length === 0) return;
    const layer = await this.commit(
      layerEntries(this.root, changes, { mtime: this.env.mtime, mtimeResolution: "s" }),
    );
    if (layer) {
      addHistory(this.state, {
        createdBy: "single snapshot of the stage",
        emptyLayer: false,
        created: this.env.created,
      });
    }
  }

  async #prepareBase(): Promise<void> {
    const { stage, env } = this;
    if (stage.baseStage !== null) {
      const base = env.stages.get(stage.baseStage);
      if (!base) {
        throw new KanikoError(`stage ${stage.index}: base stage ${stage.baseStage} was not built`);
      }
      await copyTree(base.root, this.root);
      this.state = startState(base.state.config);
      this.layers = [...base.layers];
      return;
    }
    if (stage.baseImage === null) {
      this.state = { config: scratchConfig(stage.buildFor), cmdSet: false };
      return;
    }
    const base = await env.bases.resolve(stage.baseImage, stage.buildFor);
    await unpackImage(this.root, base.source, base.manifest, {
      what: stage.baseImage,
      diffIds: base.config.rootfs.diff_ids,
      ignore: env.ignore,
      devices: true,
      skipFile: sparseRoot(stage, env) ? skipInSparseRoot : undefined,
    });
    this.state = startState(base.config);
    this.layers = baseLayers(base, env.format);
  }
}

/**
 * Whether the stage may be built on a sparse root — its base image's directories and symlinks,
 * and of its files only those under `/etc`: it runs nothing (no RUN, ONBUILD triggers included),
 * no other stage reads its root (as a base, `COPY --from` or `RUN --mount from=`), and nothing
 * snapshots the whole tree (`--single-snapshot`), so no step ever reads the files left out.
 * COPY, ADD and WORKDIR then resolve their destinations exactly as on the full root; their layers
 * hold only what they wrote and its parent directories. The one difference: writing a directory
 * where the base has a regular file outside `/etc` succeeds instead of failing.
 */
export function sparseRoot(
  stage: PlannedStage,
  env: Pick<BuildEnv, "isolation" | "opts" | "plan">,
): boolean {
  if (env.isolation === "none" || env.opts.singleSnapshot) return false;
  if ([...stage.triggers, ...stage.instructions].some((s) => s.keyword === "RUN")) return false;
  return !env.plan.stages.some((s) =>
    s.index !== stage.index && (s.baseStage === stage.index || s.deps.includes(stage.index))
  );
}

/** The files a sparse root leaves out: all but `/etc` (users, groups) and any passwd or group. */
function skipInSparseRoot(path: string): boolean {
  if (path.startsWith("etc/")) return false;
  const base = path.slice(path.lastIndexOf("/") + 1);
  return base !== "passwd" && base !== "group";
}

/** The base image's layers, media types converted to the output format (same bytes). */
function baseLayers(base: BaseImage, format: "oci" | "docker"): LayerRef[] {
  return base.image.layers.map((d, i) => ({
    descriptor: { ...d, mediaType: convertLayerType(d.mediaType, format, base.ref) },
    diffId: base.config.rootfs.diff_ids[i],
    source: base.source,
  }));
}

/** Relabels a layer media type for the output format: gzip ↔ gzip, tar ↔ tar; zstd needs OCI. */
export function convertLayerType(mediaType: string, format: "oci" | "docker", ref: string): string {
  const kind = /zstd/.test(mediaType) ? "zstd" : /gzip/.test(mediaType) ? "gzip" : "tar";
  if (format === "oci") {
    return kind === "zstd" ? OCI.layerZstd : kind === "gzip" ? OCI.layerGzip : OCI.layer;
  }
  if (kind === "zstd") {
    throw new KanikoError(`${ref} has zstd layers, which Docker media types cannot describe`, {
      hint: "build with --oci-mode=oci",
    });
  }
  return kind === "gzip" ? DOCKER.layerGzip : "application/vnd.docker.image.rootfs.diff.tar";
}

/** Copies a stage root into a new root, keeping owners, modes, times, links and xattrs. */
async function copyTree(from: string, to: string): Promise<void> {
  const out = await new Deno.Command("cp", {
    args: ["-a", "--reflink=auto", `${from}/.`, to],
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new KanikoError(
      `cannot copy the stage root ${from}: ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
}
