/**
 * What every stage of one build shares: options, plan, context, registry session, base images,
 * the stages built so far, work directories, layer settings and progress reporting.
 * @module
 */
import type { LayerMemo } from "../layer/mod.ts";
import type { BuildOptions, Isolation } from "../cli/options.ts";
import type { BuildContext } from "../context/mod.ts";
import type { BuildPlan } from "../dockerfile/plan.ts";
import type { Compression } from "../layer/mod.ts";
import type { RegistrySession } from "../registry/session.ts";
import type { BaseImages } from "./base.ts";
import type { FileBlobSource } from "./image.ts";
import type { SecretSource } from "./mounts.ts";
import type { Progress } from "./progress.ts";
import type { StageResult } from "./stage.ts";

/** The build-wide environment of the stage builders. */
export interface BuildEnv {
  opts: BuildOptions;
  plan: BuildPlan;
  context: BuildContext;
  session: RegistrySession;
  bases: BaseImages;
  /** Stages built so far, by index. */
  stages: Map<number, StageResult>;
  isolation: Isolation;
  /** Layer blobs written by this build. */
  layersDir: string;
  /** Scratch space (external images for COPY --from, downloads). */
  tmpDir: string;
  /** RUN --mount=type=cache directories. */
  cacheDir: string;
  /** Paths never snapshotted nor written by base layers. */
  ignore: (path: string) => boolean;
  compression: Compression;
  compressionLevel?: number;
  format: "oci" | "docker";
  /** Clamp for file mtimes in new layers (ns), from --reproducible or SOURCE_DATE_EPOCH. */
  mtime?: bigint;
  /** `created` of the config and history entries (RFC 3339). */
  created: string;
  blobs: FileBlobSource;
  /** Writes layers once for builds that share them (the platforms of one build), when set. */
  layerMemo?: LayerMemo;
  secrets: Map<string, SecretSource>;
  progress: Progress;
}
