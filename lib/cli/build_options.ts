/**
 * Maps the build command's parsed flags and the environment (`KANIKO_NO_PUSH`, `KANIKO_DIR`,
 * `COSIGN_PASSWORD`, bare `--build-arg K`) to {@link BuildOptions}, and checks the combinations
 * Kaniko rejects before building.
 * @module
 */

import { UsageError } from "../errors.ts";
import { resolveBuildArgs as resolveArgMap } from "../dockerfile/build_args.ts";
import type { EnvLookup, FlagValues } from "./flag_spec.ts";
import type { BuildOptions, GitOptions, K8sOptions, SecretSpec } from "./options.ts";
import { registryOptionsFrom } from "./registry_flags.ts";
import { isBoolWord, parseBool } from "./values.ts";

/** What the mapper reads besides the flags. */
export interface MapperContext {
  /** Environment lookup. */
  env: EnvLookup;
  /** Receives warnings to log once logging is configured. */
  warnings: string[];
}

/**
 * `--build-arg` values as `K=V`: a bare `K` takes K from the environment and is dropped when K is
 * unset (BuildKit's and the docker CLI's rule; the front end's `resolveBuildArgs` decides).
 */
export function resolveBuildArgs(args: readonly string[], env: EnvLookup): string[] {
  return [...resolveArgMap(args, env)].map(([k, v]) => `${k}=${v}`);
}

/** Builds and validates {@link BuildOptions}. Throws a `UsageError` on a bad combination. */
export function buildOptionsFrom(flags: FlagValues, context: MapperContext): BuildOptions {
  const options: BuildOptions = {
    ...contextOptions(flags, context),
    ...outputOptions(flags, context),
    ...cacheOptions(flags),
    ...platformOptions(flags, context),
    registry: registryOptionsFrom(flags, context.env),
  };
  const k8s = k8sOptions(flags, options.driver, context);
  if (k8s) options.k8s = k8s;
  validateBuildOptions(options);
  return options;
}

function contextOptions(flags: FlagValues, context: MapperContext) {
  return {
    context: flags.string("context"),
    contextSubPath: flags.optional("context-sub-path"),
    bucket: flags.optional("bucket"),
    git: gitOptions(flags.list<[string, string | boolean]>("git")),
    dockerfile: flags.string("dockerfile"),
    buildArgs: resolveBuildArgs(flags.list("build-arg"), context.env),
    target: flags.optional("target"),
    skipUnusedStages: flags.bool("skip-unused-stages"),
    labels: Object.fromEntries(flags.list<[string, string]>("label")),
    customPlatform: flags.string("custom-platform"),
    secrets: resolveSecrets(flags.list<SecretSpec>("secret"), context.env),
    force: flags.bool("force"),
    kanikoDir: flags.given("kaniko-dir")
      ? flags.string("kaniko-dir")
      : context.env("KANIKO_DIR") || flags.string("kaniko-dir"),
    isolation: flags.given("isolation")
      ? flags.choice<NonNullable<BuildOptions["isolation"]>>("isolation")
      : undefined,
  };
}

function outputOptions(flags: FlagValues, context: MapperContext) {
  return {
    destinations: flags.list("destination"),
    noPush: noPush(flags, context),
    noPushCache: flags.bool("no-push-cache"),
    pushIgnoreImmutableTagErrors: flags.bool("push-ignore-immutable-tag-errors"),
    skipPushPermissionCheck: flags.bool("skip-push-permission-check"),
    imageFsExtractRetry: flags.number("image-fs-extract-retry"),
    tarPath: flags.optional("tar-path"),
    ociLayoutPath: flags.optional("oci-layout-path"),
    digestFile: flags.optional("digest-file"),
    imageNameWithDigestFile: flags.optional("image-name-with-digest-file"),
    imageNameTagWithDigestFile: flags.optional("image-name-tag-with-digest-file"),
    compression: flags.choice<BuildOptions["compression"]>("compression"),
    compressionLevel: flags.number("compression-level"),
    reproducible: flags.bool("reproducible"),
    forceBuildMetadata: flags.bool("force-build-metadata"),
  };
}

function cacheOptions(flags: FlagValues) {
  return {
    cache: flags.bool("cache"),
    cacheRepo: flags.optional("cache-repo"),
    cacheDir: flags.string("cache-dir"),
    cacheTtl: flags.number("cache-ttl"),
    cacheCopyLayers: flags.bool("cache-copy-layers"),
    cacheRunLayers: flags.bool("cache-run-layers"),
    compressedCaching: flags.bool("compressed-caching"),
    snapshotMode: flags.choice<BuildOptions["snapshotMode"]>("snapshot-mode"),
    singleSnapshot: flags.bool("single-snapshot"),
    useNewRun: flags.bool("use-new-run"),
    ignorePaths: flags.list("ignore-path"),
    ignoreVarRun: flags.bool("ignore-var-run"),
    cleanup: flags.bool("cleanup"),
  };
}

function platformOptions(flags: FlagValues, context: MapperContext) {
  return {
    multiPlatform: flags.list("multi-platform"),
    driver: flags.choice<BuildOptions["driver"]>("driver"),
    publishIndex: flags.bool("publish-index"),
    legacyManifestList: flags.bool("legacy-manifest-list"),
    ociMode: flags.choice<BuildOptions["ociMode"]>("oci-mode"),
    indexAnnotations: Object.fromEntries(flags.list<[string, string]>("index-annotations")),
    digestsFrom: flags.optional("digests-from"),
    requireNativeNodes: flags.bool("require-native-nodes"),
    archCacheRepoSuffix: flags.string("arch-cache-repo-suffix"),
    dryRun: flags.bool("dry-run"),
    signImages: flags.bool("sign-images"),
    cosignKey: flags.optional("cosign-key"),
    cosignKeyPassword: flags.optional("cosign-key-password") || context.env("COSIGN_PASSWORD") ||
      undefined,
  };
}

const K8S_FLAGS = [
  "kubeconfig",
  "kube-context",
  "namespace",
  "executor-image",
  "k8s-registry-secret",
  "k8s-service-account",
  "k8s-timeout",
];

/** The k8s driver's settings with `--driver=k8s`; otherwise its flags are warned about. */
function k8sOptions(
  flags: FlagValues,
  driver: BuildOptions["driver"],
  context: MapperContext,
): K8sOptions | undefined {
  if (driver !== "k8s") {
    const given = K8S_FLAGS.filter((f) => flags.given(f));
    if (given.length > 0) {
      context.warnings.push(
        `ignoring ${given.map((f) => `--${f}`).join(", ")}: they apply to --driver=k8s only`,
      );
    }
    return undefined;
  }
  return {
    kubeconfig: flags.optional("kubeconfig"),
    context: flags.optional("kube-context"),
    namespace: flags.optional("namespace"),
    executorImage: flags.string("executor-image"),
    registrySecret: flags.optional("k8s-registry-secret"),
    serviceAccount: flags.optional("k8s-service-account"),
    timeout: flags.number("k8s-timeout"),
  };
}

/** `--no-push` when given, else `KANIKO_NO_PUSH` (an unreadable value is warned about and ignored). */
function noPush(flags: FlagValues, context: MapperContext): boolean {
  const fromEnv = context.env("KANIKO_NO_PUSH");
  if (flags.given("no-push") || fromEnv === undefined || fromEnv === "") {
    return flags.bool("no-push");
  }
  if (isBoolWord(fromEnv)) return parseBool(fromEnv, "KANIKO_NO_PUSH");
  context.warnings.push(
    `ignoring KANIKO_NO_PUSH=${JSON.stringify(fromEnv)}: expected true or false`,
  );
  return flags.bool("no-push");
}

function gitOptions(pairs: readonly [string, string | boolean][]): GitOptions {
  const git: GitOptions = {
    branch: "",
    singleBranch: false,
    recurseSubmodules: false,
    insecureSkipTls: false,
  };
  for (const [key, value] of pairs) {
    if (key === "branch") git.branch = String(value);
    if (key === "single-branch") git.singleBranch = value === true;
    if (key === "recurse-submodules") git.recurseSubmodules = value === true;
    if (key === "insecure-skip-tls") git.insecureSkipTls = value === true;
  }
  return git;
}

/**
 * Completes `--secret` values that name neither a file nor a variable (as buildx does): the
 * variable named like the id when it is set, else the file named like the id.
 */
function resolveSecrets(specs: readonly SecretSpec[], env: EnvLookup): SecretSpec[] {
  const seen = new Set<string>();
  return specs.map((spec) => {
    if (seen.has(spec.id)) {
      throw new UsageError(`--secret id '${spec.id}' is given twice`, {
        hint: "give each secret a distinct id",
      });
    }
    seen.add(spec.id);
    if (spec.src !== undefined || spec.env !== undefined) return spec;
    return env(spec.id) !== undefined ? { ...spec, env: spec.id } : { ...spec, src: spec.id };
  });
}

/** Checks the flag combinations that cannot work (Kaniko's checks, and the multi-platform ones). */
export function validateBuildOptions(options: BuildOptions): void {
  const fail = (message: string, hint?: string) => {
    throw new UsageError(message, { hint });
  };
  const noDestination = options.destinations.length === 0;
  if (!options.noPush && !options.dryRun && noDestination) {
    fail("you must provide --destination, or use --no-push");
  }
  if (options.cache && options.noPush && !options.cacheRepo) {
    fail("if using cache with --no-push, specify cache repo with --cache-repo");
  }
  if (noDestination && options.imageNameWithDigestFile) {
    fail("you must provide --destination if setting --image-name-with-digest-file");
  }
  if (noDestination && options.imageNameTagWithDigestFile) {
    fail("you must provide --destination if setting --image-name-tag-with-digest-file");
  }
  if (noDestination && options.publishIndex && !options.dryRun) {
    fail("--publish-index needs a --destination to push the index to");
  }
  if (options.legacyManifestList && options.ociMode === "oci") {
    fail("--legacy-manifest-list conflicts with --oci-mode=oci", "use --oci-mode=docker or auto");
  }
  if (options.signImages && !options.cosignKey) {
    fail("--sign-images needs --cosign-key PATH");
  }
  const duplicate = options.multiPlatform.find((p, i) => options.multiPlatform.indexOf(p) !== i);
  if (duplicate) fail(`--multi-platform lists ${duplicate} twice`);
}
