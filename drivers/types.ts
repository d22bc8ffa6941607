/**
 * What the multi-platform coordinator (`drivers/coordinator.ts`) and its drivers (`local`, `ci`,
 * `k8s`) share. The flow: validate → plan per platform → `driver.preflight` (fail fast, before
 * anything is pulled) → `driver.build` (one {@link ChildImage} per platform) → assemble the index
 * (`lib/index/`) → push children and index to every destination → digest files → summary.
 * @module
 */
import type { BuildOptions } from "../lib/cli/options.ts";
import type { BuildContext } from "../lib/context/mod.ts";
import type { Dockerfile } from "../lib/dockerfile/ast.ts";
import type { BuildPlan } from "../lib/dockerfile/plan.ts";
import type { ImageSource } from "../lib/oci/content.ts";
import type { Platform } from "../lib/oci/schemas.ts";
import type { RegistrySession } from "../lib/registry/session.ts";

/** One platform of a multi-platform build. */
export interface PlatformTarget {
  /** Normalised `os/arch[/variant]` (`linux/arm64`, `linux/arm/v7`, `linux/amd64`). */
  platform: string;
  /** The same, parsed. */
  parsed: Platform;
  /** The file-name form: `linux-amd64`, `linux-arm-v7` (digest files, per-platform tags). */
  slug: string;
  /** Whether this host runs the platform's binaries natively (amd64 runs 386; no emulation). */
  native: boolean;
  /** The front end's plan for this platform (the TARGETPLATFORM, BUILDPLATFORM, … args applied). */
  plan: BuildPlan;
  /** Whether the stages built for this platform run any RUN step. */
  hasRun: boolean;
}

/** Everything a driver needs to know about the build. */
export interface MultiPlatformBuild {
  opts: BuildOptions;
  dockerfile: Dockerfile;
  /** The Dockerfile's name for messages (`Dockerfile`, `ctx/Dockerfile.prod`). */
  file: string;
  context: BuildContext;
  /** In the order the user gave them (the index keeps it). */
  targets: PlatformTarget[];
  /** Media types the children are built with. */
  format: "oci" | "docker";
}

/**
 * One platform's image as a driver hands it back: either built here and not yet pushed
 * (`local`; its blobs are readable from `image` until `dispose`), or already in a registry
 * repository by digest (`k8s`, `ci`).
 */
export type ChildImage =
  | {
    kind: "local";
    target: PlatformTarget;
    image: ImageSource & { manifest: { bytes: Uint8Array; mediaType: string; digest: string } };
    /** Rebuilds the same image with the other media types (no layer is rebuilt or relabelled:
     * the manifest and config descriptor are made anew), for `--oci-mode=auto`. */
    reassemble?(format: "oci" | "docker"): ChildImage;
    /** Removes what the build left on disk (after every output is written). */
    dispose(): Promise<void>;
  }
  | {
    kind: "remote";
    target: PlatformTarget;
    /** `registry/repository` the manifest was pushed to, e.g. `127.0.0.1:5000/app`. */
    repository: string;
    digest: string;
    mediaType: string;
    size: number;
  };

/** What drivers get besides the build. */
export interface DriverContext {
  session: RegistrySession;
  signal: AbortSignal;
}

/** A way to get one image per platform. */
export interface Driver {
  readonly name: "local" | "k8s" | "ci";
  /**
   * Checks that every platform can be built, before anything is pulled or built: `local` refuses
   * RUN steps for a platform the host does not run natively, `k8s` checks Ready nodes per
   * architecture (`--require-native-nodes`), `ci` checks the digest files. Throws one
   * `KanikoError` naming every platform that cannot be built and what to do.
   */
  preflight(build: MultiPlatformBuild, ctx: DriverContext): Promise<void>;
  /** One line per platform for `--dry-run` (how it would be built), in target order. */
  describe(build: MultiPlatformBuild): string[];
  /** Builds (or collects) every platform; the result is in target order. */
  build(build: MultiPlatformBuild, ctx: DriverContext): Promise<ChildImage[]>;
}
