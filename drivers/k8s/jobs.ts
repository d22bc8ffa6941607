/**
 * The Job the `k8s` driver creates for one platform, and the executor's command line in it: the
 * build's own flags for that platform (`--custom-platform`), a per-platform tag on every
 * destination repository, and `--digest-file=/dev/termination-log`, so the digest comes back as
 * the container's termination message (no exec into pods). Pure functions: tested as data.
 * @module
 */
import type { BuildOptions } from "../../lib/cli/options.ts";
import { parseReference } from "../../lib/registry/reference.ts";
import type { PlatformTarget } from "../types.ts";

/** Labels on every Job and Pod the driver creates. */
export const LABELS = {
  managedBy: "app.kubernetes.io/managed-by",
  name: "app.kubernetes.io/name",
  buildId: "kaniko-deno.dev/build-id",
  platform: "kaniko-deno.dev/platform",
} as const;
/** The `app.kubernetes.io/managed-by` value. */
export const MANAGER = "kaniko-deno";
/** The executor container's name. */
export const CONTAINER = "executor";
/** Where the executor writes the digest: the termination message file. */
export const TERMINATION_LOG = "/dev/termination-log";
/** Where the dockerconfigjson Secret is mounted (`DOCKER_CONFIG`). */
export const DOCKER_CONFIG_DIR = "/kaniko/.docker";

/** What a Job is made from. */
export interface JobInput {
  buildId: string;
  namespace: string;
  target: Pick<PlatformTarget, "platform" | "parsed" | "slug">;
  /** The executor image. */
  image: string;
  /** The executor's arguments (see {@link executorArgs}). */
  args: string[];
  serviceAccount?: string;
  /** A `kubernetes.io/dockerconfigjson` Secret mounted as the Docker config. */
  registrySecret?: string;
  /** Server-side deadline, seconds (`activeDeadlineSeconds`). */
  deadlineSeconds: number;
  /** `ttlSecondsAfterFinished` (the driver deletes its Jobs anyway; this is the backstop). */
  ttlSeconds?: number;
}

/** A Job name: `kaniko-<build id>-<platform slug>`, a valid DNS label of at most 63 chars. */
export function jobName(buildId: string, slug: string): string {
  const name = `kaniko-${buildId}-${slug}`.toLowerCase().replace(/[^a-z0-9-]/g, "-");
  return name.slice(0, 63).replace(/-+$/, "");
}

/** The label selector of every object of one build. */
export function buildSelector(buildId: string): string {
  return `${LABELS.managedBy}=${MANAGER},${LABELS.buildId}=${buildId}`;
}

/** The `batch/v1` Job for one platform. */
export function jobManifest(input: JobInput): Record<string, unknown> {
  const labels = {
    [LABELS.name]: "kaniko-deno",
    [LABELS.managedBy]: MANAGER,
    [LABELS.buildId]: input.buildId,
    [LABELS.platform]: input.target.slug,
  };
  const annotations = { "kaniko-deno.dev/platform": input.target.platform };
  const container: Record<string, unknown> = {
    name: CONTAINER,
    image: input.image,
    args: input.args,
    terminationMessagePath: TERMINATION_LOG,
    terminationMessagePolicy: "FallbackToLogsOnError",
  };
  const pod: Record<string, unknown> = {
    restartPolicy: "Never",
    nodeSelector: {
      "kubernetes.io/os": input.target.parsed.os,
      "kubernetes.io/arch": input.target.parsed.architecture,
    },
    containers: [container],
  };
  if (input.serviceAccount) pod.serviceAccountName = input.serviceAccount;
  if (input.registrySecret) {
    container.env = [{ name: "DOCKER_CONFIG", value: DOCKER_CONFIG_DIR }];
    container.volumeMounts = [{
      name: "docker-config",
      mountPath: DOCKER_CONFIG_DIR,
      readOnly: true,
    }];
    pod.volumes = [{
      name: "docker-config",
      secret: {
        secretName: input.registrySecret,
        items: [{ key: ".dockerconfigjson", path: "config.json" }],
      },
    }];
  }
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: {
      name: jobName(input.buildId, input.target.slug),
      namespace: input.namespace,
      labels,
      annotations,
    },
    spec: {
      backoffLimit: 0,
      ttlSecondsAfterFinished: input.ttlSeconds ?? 3600,
      activeDeadlineSeconds: Math.max(1, Math.ceil(input.deadlineSeconds)),
      template: { metadata: { labels, annotations }, spec: pod },
    },
  };
}

/** The per-platform destination of `destination`: `REPO:TAG-<slug>` (TAG defaults to latest). */
export function platformDestination(destination: string, slug: string): string {
  const ref = parseReference(destination);
  const tag = `${ref.tag ?? "latest"}-${slug}`.slice(0, 128);
  return `${ref.name}:${tag}`;
}

/** The cache repository of one platform: `--cache-repo` (else `<destination>/cache`) + suffix. */
export function platformCacheRepo(opts: BuildOptions, target: PlatformTarget): string | undefined {
  const base = opts.cacheRepo ??
    (opts.destinations[0] ? `${parseReference(opts.destinations[0]).name}/cache` : undefined);
  if (!base || base.startsWith("oci:")) return base;
  const { architecture, variant } = target.parsed;
  const arch = variant ? `${architecture}-${variant}` : architecture;
  return base + opts.archCacheRepoSuffix.replaceAll("${ARCH}", arch);
}

/** Where the build's sources come from, as the Job sees them. */
export interface JobSource {
  /** The `--context` value (`oci://…@sha256:…`, or a git/https context passed through). */
  context: string;
  /** `--context-sub-path`, when it still applies. */
  contextSubPath?: string;
  /** `--dockerfile`. */
  dockerfile: string;
}

/** The executor's arguments for one platform. */
export function executorArgs(
  opts: BuildOptions,
  target: PlatformTarget,
  source: JobSource,
  format: "oci" | "docker",
): string[] {
  const a: string[] = [`--context=${source.context}`, `--dockerfile=${source.dockerfile}`];
  if (source.contextSubPath) a.push(`--context-sub-path=${source.contextSubPath}`);
  a.push(...gitArgs(opts));
  for (const arg of opts.buildArgs) a.push(`--build-arg=${arg}`);
  if (opts.target) a.push(`--target=${opts.target}`);
  if (opts.skipUnusedStages) a.push("--skip-unused-stages");
  for (const [k, v] of Object.entries(opts.labels)) a.push(`--label=${k}=${v}`);
  a.push(`--custom-platform=${target.platform}`);
  for (const d of opts.destinations) a.push(`--destination=${platformDestination(d, target.slug)}`);
  a.push(`--digest-file=${TERMINATION_LOG}`);
  a.push(`--oci-mode=${format}`);
  a.push(...outputArgs(opts), ...cacheArgs(opts, target), ...registryArgs(opts));
  return a;
}

function gitArgs(opts: BuildOptions): string[] {
  const g = opts.git;
  const pairs: string[] = [];
  if (g.branch) pairs.push(`branch=${g.branch}`);
  if (g.singleBranch) pairs.push("single-branch=true");
  if (g.recurseSubmodules) pairs.push("recurse-submodules=true");
  if (g.insecureSkipTls) pairs.push("insecure-skip-tls=true");
  return pairs.length > 0 ? [`--git=${pairs.join(",")}`] : [];
}

function outputArgs(opts: BuildOptions): string[] {
  const a = [`--compression=${opts.compression}`];
  if (opts.compressionLevel !== -1) a.push(`--compression-level=${opts.compressionLevel}`);
  if (opts.reproducible) a.push("--reproducible");
  if (opts.forceBuildMetadata) a.push("--force-build-metadata");
  if (opts.snapshotMode !== "full") a.push(`--snapshot-mode=${opts.snapshotMode}`);
  if (opts.singleSnapshot) a.push("--single-snapshot");
  if (opts.useNewRun) a.push("--use-new-run");
  for (const p of opts.ignorePaths) a.push(`--ignore-path=${p}`);
  if (!opts.ignoreVarRun) a.push("--ignore-var-run=false");
  if (opts.pushIgnoreImmutableTagErrors) a.push("--push-ignore-immutable-tag-errors");
  if (opts.skipPushPermissionCheck) a.push("--skip-push-permission-check");
  if (opts.imageFsExtractRetry > 0) a.push(`--image-fs-extract-retry=${opts.imageFsExtractRetry}`);
  return a;
}

function cacheArgs(opts: BuildOptions, target: PlatformTarget): string[] {
  if (!opts.cache) return [];
  const a = ["--cache=true"];
  const repo = platformCacheRepo(opts, target);
  if (repo) a.push(`--cache-repo=${repo}`);
  a.push(`--cache-ttl=${Math.round(opts.cacheTtl / 1000)}s`);
  if (opts.cacheCopyLayers) a.push("--cache-copy-layers");
  if (!opts.cacheRunLayers) a.push("--cache-run-layers=false");
  if (!opts.compressedCaching) a.push("--compressed-caching=false");
  if (opts.noPushCache) a.push("--no-push-cache");
  return a;
}

function registryArgs(opts: BuildOptions): string[] {
  const r = opts.registry;
  const a: string[] = [];
  const flag = (on: boolean, name: string) => on && a.push(`--${name}`);
  flag(r.insecure, "insecure");
  flag(r.insecurePull, "insecure-pull");
  flag(r.skipTlsVerify, "skip-tls-verify");
  flag(r.skipTlsVerifyPull, "skip-tls-verify-pull");
  flag(r.skipDefaultRegistryFallback, "skip-default-registry-fallback");
  for (const h of r.insecureRegistries) a.push(`--insecure-registry=${h}`);
  for (const h of r.skipTlsVerifyRegistries) a.push(`--skip-tls-verify-registry=${h}`);
  for (const m of r.registryMirrors) a.push(`--registry-mirror=${m}`);
  for (const [from, tos] of Object.entries(r.registryMap)) {
    for (const to of tos) a.push(`--registry-map=${from}=${to}`);
  }
  if (r.pushRetry > 0) a.push(`--push-retry=${r.pushRetry}`);
  a.push(`--push-retry-initial-delay=${r.pushRetryInitialDelay}`);
  a.push(`--push-retry-max-delay=${r.pushRetryMaxDelay}`);
  if (r.imageDownloadRetry > 0) a.push(`--image-download-retry=${r.imageDownloadRetry}`);
  return a;
}
