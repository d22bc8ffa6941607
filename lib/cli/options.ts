/**
 * The typed options each command receives from the command line. Types only: command modules
 * (`lib/commands/*.ts`) import them without pulling in the parser.
 * @module
 */

import type { RegistryOptions } from "../registry/options.ts";

/** `--snapshot-mode` values. */
export const SNAPSHOT_MODES = ["full", "redo", "time"] as const;
/** How files are compared between snapshots. */
export type SnapshotMode = typeof SNAPSHOT_MODES[number];

/** `--compression` values. */
export const COMPRESSIONS = ["gzip", "zstd"] as const;
/** Layer compression. */
export type Compression = typeof COMPRESSIONS[number];

/** `--isolation` values. */
export const ISOLATIONS = ["chroot", "none"] as const;
/** Where RUN steps run: a private root directory (`chroot`) or `/` (`none`, Kaniko's model). */
export type Isolation = typeof ISOLATIONS[number];

/** `--driver` values. */
export const DRIVERS = ["local", "k8s", "ci"] as const;
/** Who builds each platform of a multi-platform build. */
export type Driver = typeof DRIVERS[number];

/** `--oci-mode` values. */
export const OCI_MODES = ["oci", "auto", "docker"] as const;
/** Media types of the pushed manifests and index. */
export type OciMode = typeof OCI_MODES[number];

/** `--git` options for a `git://` context. */
export interface GitOptions {
  /** Branch (or tag) to clone; empty for the default branch. */
  branch: string;
  /** Clone only that branch. */
  singleBranch: boolean;
  /** Clone submodules too. */
  recurseSubmodules: boolean;
  /** Do not verify the git server's TLS certificate. */
  insecureSkipTls: boolean;
}

/** A `--secret` for `RUN --mount=type=secret`: exactly one of `src` and `env` is set. */
export interface SecretSpec {
  /** The id `RUN --mount=type=secret,id=…` refers to. */
  id: string;
  /** File holding the secret. */
  src?: string;
  /** Environment variable holding the secret. */
  env?: string;
}

/** Settings of the `k8s` driver (`--kubeconfig`, `--namespace`, `--executor-image`, …). */
export interface K8sOptions {
  /** `--kubeconfig`: default `$KUBECONFIG`, `~/.kube/config`, then the in-cluster config. */
  kubeconfig?: string;
  /** `--kube-context`: default the kubeconfig's current-context. */
  context?: string;
  /** `--namespace`: default the context's, the pod's, else `default`. */
  namespace?: string;
  /** `--executor-image`: the image the per-platform Jobs run. */
  executorImage: string;
  /** `--k8s-registry-secret`: a dockerconfigjson Secret mounted as the Jobs' Docker config. */
  registrySecret?: string;
  /** `--k8s-service-account`: the ServiceAccount the Jobs run as. */
  serviceAccount?: string;
  /** `--k8s-timeout` in milliseconds. */
  timeout: number;
}

/** Everything the build command needs, from the command line and the environment. */
export interface BuildOptions {
  /** `--context`/`-c`: path, `dir://`, `tar://`, `https://` tarball or `git://` URL. */
  context: string;
  /** `--context-sub-path`: directory inside an unpacked prefixed context. */
  contextSubPath?: string;
  /** `--bucket`/`-b` (legacy): GCS bucket holding the context tarball. */
  bucket?: string;
  /** `--git` clone options. */
  git: GitOptions;
  /** `--dockerfile`/`-f`: path or URL of the Dockerfile. */
  dockerfile: string;
  /** `--build-arg`: `K=V` strings, in order; a bare `K` was resolved from the environment. */
  buildArgs: string[];
  /** `--target`: stage to build. */
  target?: string;
  /** `--skip-unused-stages`. */
  skipUnusedStages: boolean;
  /** `--label k=v`, in order. */
  labels: Record<string, string>;
  /** `--custom-platform` (or deprecated `--customPlatform`); the host platform by default. */
  customPlatform: string;
  /** `--secret`: build secrets for `RUN --mount=type=secret`. */
  secrets: SecretSpec[];
  /** `--destination`/`-d`: image references to push. */
  destinations: string[];
  /** `--no-push` (or `KANIKO_NO_PUSH`). */
  noPush: boolean;
  /** `--no-push-cache`. */
  noPushCache: boolean;
  /** `--push-ignore-immutable-tag-errors`. */
  pushIgnoreImmutableTagErrors: boolean;
  /** `--skip-push-permission-check`. */
  skipPushPermissionCheck: boolean;
  /** `--image-fs-extract-retry`. */
  imageFsExtractRetry: number;
  /** `--tar-path` (or deprecated `--tarPath`): docker-save tarball to write. */
  tarPath?: string;
  /** `--oci-layout-path`: OCI image layout to write. */
  ociLayoutPath?: string;
  /** `--digest-file`: file (or `https://` URL, PUT) to write `sha256:…` to. */
  digestFile?: string;
  /** `--image-name-with-digest-file`. */
  imageNameWithDigestFile?: string;
  /** `--image-name-tag-with-digest-file`. */
  imageNameTagWithDigestFile?: string;
  /** `--compression`. */
  compression: Compression;
  /** `--compression-level`; -1 = the algorithm's default. */
  compressionLevel: number;
  /** `--reproducible`. */
  reproducible: boolean;
  /** `--force-build-metadata`. */
  forceBuildMetadata: boolean;
  /** `--cache`. */
  cache: boolean;
  /** `--cache-repo` (`oci:PATH` for an OCI layout cache). */
  cacheRepo?: string;
  /** `--cache-dir`: base-image cache directory. */
  cacheDir: string;
  /** `--cache-ttl` in milliseconds. */
  cacheTtl: number;
  /** `--cache-copy-layers`. */
  cacheCopyLayers: boolean;
  /** `--cache-run-layers`. */
  cacheRunLayers: boolean;
  /** `--compressed-caching`. */
  compressedCaching: boolean;
  /** `--snapshot-mode` (or deprecated `--snapshotMode`). */
  snapshotMode: SnapshotMode;
  /** `--single-snapshot`. */
  singleSnapshot: boolean;
  /** `--use-new-run`. */
  useNewRun: boolean;
  /** `--ignore-path`: extra paths left out of snapshots. */
  ignorePaths: string[];
  /** `--ignore-var-run` (or deprecated `--whitelist-var-run`). */
  ignoreVarRun: boolean;
  /** `--cleanup`. */
  cleanup: boolean;
  /** `--force`: allow building outside a container. */
  force: boolean;
  /** `--kaniko-dir`, else `KANIKO_DIR`, else `/kaniko`. */
  kanikoDir: string;
  /** `--isolation`; undefined: `none` inside a container, `chroot` outside. */
  isolation?: Isolation;
  /** `--multi-platform` (alias `--platform`): platforms to build, `os/arch[/variant]`. */
  multiPlatform: string[];
  /** `--driver`. */
  driver: Driver;
  /** `--publish-index`: push an index of the per-platform images. */
  publishIndex: boolean;
  /** `--legacy-manifest-list`: a Docker manifest list instead of an OCI index. */
  legacyManifestList: boolean;
  /** `--oci-mode`. */
  ociMode: OciMode;
  /** `--index-annotations`, in order. */
  indexAnnotations: Record<string, string>;
  /** `--digests-from`: directory of `<os>-<arch>[-<variant>].digest` files (ci driver). */
  digestsFrom?: string;
  /** `--require-native-nodes`. */
  requireNativeNodes: boolean;
  /** `--arch-cache-repo-suffix`. */
  archCacheRepoSuffix: string;
  /** `--dry-run`. */
  dryRun: boolean;
  /** The `k8s` driver's settings; set only with `--driver=k8s`. */
  k8s?: K8sOptions;
  /** `--sign-images`. */
  signImages: boolean;
  /** `--cosign-key` (alias `--cosign-key-path`). */
  cosignKey?: string;
  /** `--cosign-key-password` (or `COSIGN_PASSWORD`). A secret: registered for redaction. */
  cosignKeyPassword?: string;
  /** Registry, TLS, credential and retry settings. */
  registry: RegistryOptions;
}

/** Options of `copy SRC DST`. */
export interface CopyCommandOptions {
  /** `--all`: copy every platform of an index (otherwise one platform is chosen). */
  all: boolean;
  /** `--platform`: the platform to copy from an index. */
  platform?: string;
  /** Registry settings, including `--upload-chunk-size` and `--jobs`. */
  registry: RegistryOptions;
}

/** Options of `manifest REF` and `digest REF`. */
export interface ManifestCommandOptions {
  /** `--platform`: resolve an index to this platform's manifest. */
  platform?: string;
  /** Registry settings. */
  registry: RegistryOptions;
}

/** Options of `tags REPO`. */
export interface TagsCommandOptions {
  /** Registry settings. */
  registry: RegistryOptions;
}

/** Options of `parse`. */
export interface ParseCommandOptions {
  /** `--dockerfile`/`-f`: the Dockerfile to parse. */
  dockerfile: string;
  /** `--build-arg`: `K=V` strings; a bare `K` was resolved from the environment. */
  buildArgs: string[];
  /** `--target`. */
  target?: string;
  /** `--platform`: the platform for `TARGETPLATFORM` and friends. */
  platform?: string;
  /** `--raw`: print the syntax tree only. */
  raw: boolean;
}
