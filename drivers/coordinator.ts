/**
 * The multi-platform coordinator: validate → plan per platform → `driver.preflight` (fail fast,
 * before anything is pulled) → `driver.build` → assemble the index (entries in the user's
 * order) → push to every `--destination` → digest files naming the index → summary.
 *
 * Children are pushed by digest to every destination repository. With `--publish-index` the
 * index goes under each destination's tag; without it each child is tagged `TAG-<slug>`
 * (`app:1-linux-arm64`) and the index is only reported. One platform without
 * `--publish-index` is the plain image, as buildx does. `--oci-mode=auto` pushes OCI and, when
 * the registry refuses OCI media types, the same images assembled in Docker form.
 * @module
 */
import type { BuildOptions } from "../lib/cli/options.ts";
import type { BuildContext } from "../lib/context/mod.ts";
import type { Dockerfile } from "../lib/dockerfile/ast.ts";
import { outputFormat, reproducibleEpoch, warnUnsupported } from "../lib/build/executor.ts";
import type { BuiltImage } from "../lib/build/image.ts";
import { writeDigestFiles, writeOutputs } from "../lib/build/outputs.ts";
import { KanikoError, UsageError } from "../lib/errors.ts";
import {
  assembleIndex,
  childEntry,
  childSource,
  IndexSource,
  isOciRefusal,
} from "../lib/index/mod.ts";
import { log } from "../lib/log.ts";
import type { ImageSource, RawManifest } from "../lib/oci/content.ts";
import { copyImage } from "../lib/oci/copy.ts";
import { writeDockerArchive } from "../lib/oci/docker_archive.ts";
import { OciLayout } from "../lib/oci/layout.ts";
import { formatPlatform, hostPlatform } from "../lib/oci/platform.ts";
import { parseReference, type Reference } from "../lib/registry/reference.ts";
import { RegistrySession } from "../lib/registry/session.ts";
import { selectDriver } from "./mod.ts";
import { normalizePlatforms, planTargets } from "./platforms.ts";
import type { ChildImage, Driver, MultiPlatformBuild } from "./types.ts";

/** The parsed build the coordinator starts from. */
export interface CoordinatorInput {
  dockerfile: Dockerfile;
  file: string;
  context: BuildContext;
}

/** What a multi-platform build produced. */
export interface MultiPlatformSummary {
  /** The index digest (or, for one platform without `--publish-index`, the image's). */
  digest: string;
  mediaType: string;
  /** Each platform's manifest digest, in target order. */
  children: { platform: string; digest: string }[];
  /** Whether the index itself was pushed. */
  indexPushed: boolean;
}

/** True when the build goes through the coordinator (else the single-platform engine). */
export function usesCoordinator(
  opts: Pick<BuildOptions, "multiPlatform" | "publishIndex" | "driver">,
): boolean {
  return opts.multiPlatform.length > 0 || opts.publishIndex || opts.driver !== "local";
}

/** The platforms asked for: `--multi-platform`, else `--custom-platform`, else the host's. */
export function requestedPlatforms(
  opts: Pick<BuildOptions, "multiPlatform" | "customPlatform">,
): string[] {
  if (opts.multiPlatform.length > 0) return [...opts.multiPlatform];
  return [opts.customPlatform || formatPlatform(hostPlatform())];
}

/**
 * Validates the options and plans every platform (nothing pulled): the build the drivers take
 * and the chosen driver. Usage errors (exit code 2) come from here.
 */
export async function prepareMultiPlatform(
  opts: BuildOptions,
  input: CoordinatorInput,
): Promise<{ build: MultiPlatformBuild; driver: Driver }> {
  const flag = opts.multiPlatform.length > 0 ? "--multi-platform" : "--custom-platform";
  const specs = normalizePlatforms(requestedPlatforms(opts), flag);
  const format = outputFormat(opts);
  reproducibleEpoch(opts);
  if (opts.tarPath && specs.length > 1) {
    throw new UsageError(
      `--tar-path writes a docker load archive, which holds one platform; ${specs.length} ` +
        `platforms were given`,
      { hint: "use --oci-layout-path for the whole index, or build one platform per --tar-path" },
    );
  }
  if (format === "docker" && Object.keys(opts.indexAnnotations).length > 0) {
    throw new UsageError("--index-annotations cannot be set on a Docker manifest list", {
      hint: "Docker manifest lists have no annotations; use --oci-mode=oci or auto",
    });
  }
  const driver = await selectDriver(opts.driver);
  const targets = planTargets(input.dockerfile, opts, input.file, specs);
  return { build: { opts, ...input, targets, format }, driver };
}

/** Runs a multi-platform build end to end; resolves to its summary. */
export async function runMultiPlatform(
  opts: BuildOptions,
  input: CoordinatorInput,
): Promise<MultiPlatformSummary> {
  const { build, driver } = await prepareMultiPlatform(opts, input);
  warnUnsupported(opts);
  const session = new RegistrySession(opts.registry);
  // Ctrl-C ends the process at once (lib/cli/main.ts); a driver that must clean up (k8s Jobs)
  // watches this signal, aborted when the build ends early.
  const abort = new AbortController();
  let children: ChildImage[] = [];
  try {
    const ctx = { session, signal: abort.signal };
    await driver.preflight(build, ctx);
    children = await driver.build(build, ctx);
    const summary = await publish(build, children, session);
    logSummary(build, summary);
    return summary;
  } catch (e) {
    abort.abort(e);
    throw e;
  } finally {
    await Promise.all(children.map((c) => c.kind === "local" ? c.dispose() : undefined));
    session.close();
  }
}

/** The tree being published: children and their index in one format. */
interface Tree {
  format: "oci" | "docker";
  children: ChildImage[];
  index: RawManifest;
}

function assemble(build: MultiPlatformBuild, children: ChildImage[], format: "oci" | "docker") {
  const annotations = format === "oci" ? build.opts.indexAnnotations : undefined;
  const index = assembleIndex(children.map(childEntry), { format, annotations });
  return { format, children, index };
}

/** Pushes the tree (falling back to Docker form under `auto`), then the local outputs. */
async function publish(
  build: MultiPlatformBuild,
  built: ChildImage[],
  session: RegistrySession,
): Promise<MultiPlatformSummary> {
  const { opts } = build;
  const refs = opts.destinations.map((d) => parseReference(d, { usage: true }));
  const plain = build.targets.length === 1 && !opts.publishIndex;
  if (plain && built[0].kind === "local") return await plainImage(built[0], opts, session);
  let tree: Tree = assemble(build, built, build.format);
  if (!opts.noPush && refs.length > 0) {
    try {
      await pushTree(build, tree, refs, session, plain);
    } catch (e) {
      if (opts.ociMode !== "auto" || tree.format !== "oci" || !isOciRefusal(e)) throw e;
      tree = dockerTree(build, tree, e);
      await pushTree(build, tree, refs, session, plain);
    }
  }
  const digest = plain ? childEntry(tree.children[0]).descriptor.digest : tree.index.digest;
  if (opts.tarPath) await writeTar(tree.children[0], opts.tarPath, refs, session);
  if (opts.ociLayoutPath) await writeLayout(tree, opts.ociLayoutPath, refs, session, plain);
  await writeDigestFiles(digest, opts, refs);
  return {
    digest,
    mediaType: plain ? childEntry(tree.children[0]).descriptor.mediaType : tree.index.mediaType,
    children: tree.children.map((c) => ({
      platform: c.target.platform,
      digest: childEntry(c).descriptor.digest,
    })),
    indexPushed: !plain && opts.publishIndex && !opts.noPush && refs.length > 0,
  };
}

/** One local platform without `--publish-index`: exactly a single-platform build's outputs. */
async function plainImage(
  child: ChildImage & { kind: "local" },
  opts: BuildOptions,
  session: RegistrySession,
): Promise<MultiPlatformSummary> {
  const summary = await writeOutputs(child.image as BuiltImage, opts, session);
  return {
    digest: summary.digest,
    mediaType: child.image.manifest.mediaType,
    children: [{ platform: child.target.platform, digest: summary.digest }],
    indexPushed: false,
  };
}

/** The same images assembled with Docker media types, after a registry refused OCI ones. */
function dockerTree(build: MultiPlatformBuild, tree: Tree, refusal: unknown): Tree {
  const remote = tree.children.filter((c) => c.kind === "remote" || !c.reassemble);
  if (remote.length > 0) {
    throw new KanikoError(
      `the registry refused OCI media types, and the ${
        remote.map((c) => c.target.platform).join(", ")
      } image(s) were pushed elsewhere in OCI form and cannot be made anew here`,
      { hint: "build every platform with --oci-mode=docker", cause: refusal },
    );
  }
  log.warn(
    `the registry refused OCI media types (${(refusal as Error).message}); pushing the same ` +
      `images as Docker v2s2 manifests in a Docker manifest list instead (--oci-mode=auto)`,
  );
  if (Object.keys(build.opts.indexAnnotations).length > 0) {
    log.warn("--index-annotations dropped: a Docker manifest list has no annotations");
  }
  const children = tree.children.map((c) =>
    (c as { reassemble(f: "docker"): ChildImage })
      .reassemble("docker")
  );
  return assemble(build, children, "docker");
}

/** The sources of the children, for copies. */
function sources(tree: Tree, session: RegistrySession): ImageSource[] {
  return tree.children.map((c) => childSource(c, session));
}

/** Pushes the tree to every destination: the index under the tag, or per-platform tags. */
async function pushTree(
  build: MultiPlatformBuild,
  tree: Tree,
  refs: Reference[],
  session: RegistrySession,
  plain: boolean,
): Promise<void> {
  const { opts } = build;
  const copyOptions = { concurrency: opts.registry.concurrency };
  for (const ref of refs) {
    const sink = session.repository(ref, "push");
    const started = performance.now();
    const seconds = () => ((performance.now() - started) / 1000).toFixed(1);
    if (opts.publishIndex) {
      const source = new IndexSource(tree.index, sources(tree, session));
      const r = await copyImage(source, sink, {
        ...copyOptions,
        all: true,
        tags: ref.tag ? [ref.tag] : [],
      });
      log.info(
        `pushed ${ref.toString()}@${tree.index.digest} (${tree.children.length} platforms) in ` +
          `${seconds()}s (${r.blobsCopied} blobs uploaded, ${r.blobsMounted} mounted, ` +
          `${r.blobsSkipped} already there)`,
      );
      continue;
    }
    const srcs = sources(tree, session);
    for (const [i, child] of tree.children.entries()) {
      const tag = plain ? ref.tag ?? "latest" : `${ref.tag ?? "latest"}-${child.target.slug}`;
      const digest = childEntry(child).descriptor.digest;
      await copyImage(srcs[i], sink, { ...copyOptions, ref: digest, tags: [tag] });
      log.info(`pushed ${ref.registry}/${ref.repository}:${tag}@${digest}`);
    }
    if (!plain) {
      log.info(
        `not pushing the index to ${ref.toString()} (no --publish-index): each platform is ` +
          `tagged ${ref.tag ?? "latest"}-<platform>; the index would be ${tree.index.digest}`,
      );
    }
  }
}

/** The one platform's image as a `docker load` archive. */
async function writeTar(
  child: ChildImage,
  path: string,
  refs: Reference[],
  session: RegistrySession,
): Promise<void> {
  const source = childSource(child, session);
  const manifest = await source.getManifest(childEntry(child).descriptor.digest);
  const tags = refs.length
    ? refs.map((r) => `${r.registry}/${r.repository}:${r.tag ?? "latest"}`)
    : ["image:latest"];
  await writeDockerArchive(path, { source, manifest, tags });
  log.info(
    `wrote the ${child.target.platform} image to ${path} (load it with docker load -i ${path})`,
  );
}

/** The index with every child (or the plain image) into an OCI layout, tagged like the push. */
async function writeLayout(
  tree: Tree,
  path: string,
  refs: Reference[],
  session: RegistrySession,
  plain: boolean,
): Promise<void> {
  const layout = await OciLayout.open(path, { create: true });
  const tag = refs[0]?.tag ?? "latest";
  if (plain) {
    const digest = childEntry(tree.children[0]).descriptor.digest;
    await copyImage(sources(tree, session)[0], layout, { ref: digest, tags: [tag] });
  } else {
    const source = new IndexSource(tree.index, sources(tree, session));
    await copyImage(source, layout, { all: true, tags: [tag] });
  }
  log.info(`wrote the ${plain ? "image" : "index"} to the OCI layout ${path} (tag ${tag})`);
}

function logSummary(build: MultiPlatformBuild, summary: MultiPlatformSummary): void {
  if (summary.children.length === 1 && !build.opts.publishIndex) {
    log.info(`built ${summary.children[0].platform} image ${summary.digest}`);
    return;
  }
  const what = summary.mediaType.includes("docker") ? "Docker manifest list" : "OCI image index";
  log.info(
    `built ${what} ${summary.digest} of ${summary.children.length} platforms: ` +
      summary.children.map((c) => `${c.platform} ${c.digest}`).join(", "),
  );
}
