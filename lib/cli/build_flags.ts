/**
 * The build command's own flags: Kaniko's executor flags (names, forms and defaults of Kaniko
 * v1.24), the multi-platform and OCI flags, and this project's additions. Registry, retry and
 * logging flags live in their own tables.
 * @module
 */

import { UsageError } from "../errors.ts";
import { VERSION } from "../version.ts";
import type { FlagSpec } from "./flag_spec.ts";
import {
  COMPRESSIONS,
  DRIVERS,
  ISOLATIONS,
  OCI_MODES,
  type SecretSpec,
  SNAPSHOT_MODES,
} from "./options.ts";
import {
  parseBool,
  parseDuration,
  parseKeyValue,
  parseKeyValueList,
  parsePlatform,
  parsePlatformList,
  quote,
} from "./values.ts";

const CONTEXT = "Context and Dockerfile";
const BUILD = "Build";
const PUSH = "Destination and push";
const OUTPUT = "Outputs";
const CACHE = "Cache";
const SNAPSHOT = "Snapshot and filesystem";
const MULTI = "Multi-platform and OCI";
const SIGN = "Signing";
const K8S = "Kubernetes driver (--driver=k8s)";
const PROCESS = "Process";
const DEPRECATED = "Deprecated";

/** The default executor image of the k8s driver's Jobs: our published image of this version. */
export const DEFAULT_EXECUTOR_IMAGE = `ghcr.io/kaniko-deno/executor:${VERSION}`;

const GIT_KEYS = ["branch", "single-branch", "recurse-submodules", "insecure-skip-tls"];

/** The platform of this machine, `os/arch` in OCI spelling (`linux/amd64`, `linux/arm64`). */
export function hostPlatform(): string {
  const arch: Record<string, string> = { x86_64: "amd64", aarch64: "arm64" };
  return `${Deno.build.os}/${arch[Deno.build.arch] ?? Deno.build.arch}`;
}

/** Parses one `--git` value: `key=value` pairs, comma-separated (`branch=main,single-branch=true`). */
export function parseGitOption(value: string, flag: string): [string, string | boolean][] {
  const form = `${GIT_KEYS.map((k) => `${k}=…`).join(",")}`;
  return parseKeyValueList(value, flag, { form }).map(([key, raw]) => {
    if (!GIT_KEYS.includes(key)) {
      throw new UsageError(`invalid key ${quote(key)} in ${flag}: expected one of ${form}`);
    }
    return [key, key === "branch" ? raw : parseBool(raw, `${flag} ${key}`)];
  });
}

/** Parses `--secret id=ID,src=PATH` or `id=ID,env=VAR` (also `source=`, `type=file|env`). */
export function parseSecret(value: string, flag: string): SecretSpec {
  const form = "id=ID,src=PATH or id=ID,env=VAR";
  const fields: Record<string, string> = {};
  for (const piece of value.split(",")) {
    const [key, val] = parseKeyValue(piece.trim(), flag, { form });
    const name = key.toLowerCase() === "source" ? "src" : key.toLowerCase();
    if (!["id", "src", "env", "type"].includes(name)) {
      throw new UsageError(`invalid key ${quote(key)} in ${flag}: expected ${form}`);
    }
    fields[name] = val;
  }
  if (fields.type !== undefined && !["file", "env"].includes(fields.type)) {
    throw new UsageError(`invalid type ${quote(fields.type)} in ${flag}: expected file or env`);
  }
  if (fields.type === "env" && fields.env === undefined && fields.src !== undefined) {
    fields.env = fields.src;
    delete fields.src;
  }
  if (fields.src !== undefined && fields.env !== undefined) {
    throw new UsageError(`${flag} ${quote(value)} sets both src and env: expected ${form}`);
  }
  const id = fields.id || fields.env || fields.src?.split("/").pop();
  if (!id) throw new UsageError(`invalid value ${quote(value)} for ${flag}: expected ${form}`);
  const spec: SecretSpec = { id };
  if (fields.src !== undefined) spec.src = fields.src;
  if (fields.env !== undefined) spec.env = fields.env;
  if (fields.type === "env" && spec.env === undefined) spec.env = id;
  if (fields.type === "file" && spec.src === undefined) spec.src = id;
  return spec;
}

function parseBuildArg(value: string, flag: string): string[] {
  if (value.startsWith("=") || value === "") {
    throw new UsageError(`invalid value ${quote(value)} for ${flag}: expected NAME=VALUE or NAME`);
  }
  return [value];
}

/** The build command's own flags. */
export const BUILD_FLAGS: readonly FlagSpec[] = [
  str(
    "context",
    "path|URL",
    "Build context: path, dir://, tar://, https:// tarball, git://",
    CONTEXT,
    {
      short: "c",
      default: "/workspace/",
    },
  ),
  str("context-sub-path", "path", "Sub path within the given context", CONTEXT),
  str("bucket", "name", "Legacy: GCS bucket holding the build context tarball", CONTEXT, {
    short: "b",
  }),
  list(
    "git",
    "key=value",
    "git clone options: branch=…,single-branch=…,recurse-submodules=…,insecure-skip-tls=…",
    CONTEXT,
    { parse: (v, f) => parseGitOption(v, f) },
  ),
  str("dockerfile", "path|URL", "Path or URL of the Dockerfile to build", CONTEXT, {
    short: "f",
    default: "Dockerfile",
  }),
  list(
    "build-arg",
    "K=V",
    "Build-time ARG value; a bare K takes its value from the environment",
    BUILD,
    { parse: parseBuildArg },
  ),
  str("target", "stage", "Target build stage", BUILD),
  bool("skip-unused-stages", "Build only the stages the target needs", BUILD),
  list("label", "k=v", "Label added to the image config", BUILD, {
    parse: (v, f) => [parseKeyValue(v, f, { form: "KEY=VALUE" })],
  }),
  str("custom-platform", "os/arch[/variant]", "Platform to build for, if not the host's", BUILD, {
    default: hostPlatform(),
    defaultHelp: `host platform, ${hostPlatform()}`,
    parse: parsePlatform,
  }),
  list("secret", "id=ID,src=PATH|env=VAR", "Secret for RUN --mount=type=secret", BUILD, {
    parse: (v, f) => [parseSecret(v, f)],
  }),
  list("destination", "ref", "Image reference to push to", PUSH, { short: "d" }),
  { ...bool("no-push", "Do not push the image to the registry", PUSH), env: "KANIKO_NO_PUSH" },
  bool("no-push-cache", "Do not push the cache layers to the registry", PUSH),
  bool("push-ignore-immutable-tag-errors", "Treat known tag-immutability errors as success", PUSH),
  bool("skip-push-permission-check", "Skip the push permission check before building", PUSH),
  int("image-fs-extract-retry", "Number of retries for image FS extraction", PUSH),
  str("tar-path", "path", "Save the image as a docker-save tarball", OUTPUT),
  str("oci-layout-path", "path", "Save the image as an OCI image layout", OUTPUT),
  str("digest-file", "path|URL", "Write the image digest to this file (https:// URL: PUT)", OUTPUT),
  str("image-name-with-digest-file", "path", "Write repo@digest lines to this file", OUTPUT),
  str(
    "image-name-tag-with-digest-file",
    "path",
    "Write repo:tag@digest lines to this file",
    OUTPUT,
  ),
  choice("compression", "Layer compression", OUTPUT, COMPRESSIONS, "gzip"),
  { ...int("compression-level", "Compression level; -1 = default", OUTPUT, -1), min: -1 },
  bool("reproducible", "Strip timestamps out of the image to make it reproducible", OUTPUT),
  bool("force-build-metadata", "Add metadata-only layers even when nothing changed", OUTPUT),
  bool("cache", "Use cache when building image", CACHE),
  str(
    "cache-repo",
    "repo|oci:path",
    "Layer cache repository (default: <destination>/cache)",
    CACHE,
  ),
  str("cache-dir", "path", "Local base-image cache directory", CACHE, { default: "/cache" }),
  str("cache-ttl", "duration", "Cache timeout, e.g. 6h", CACHE, {
    default: 336 * 3_600_000,
    defaultHelp: "336h",
    parse: parseDuration,
  }),
  bool("cache-copy-layers", "Cache COPY layers", CACHE),
  bool("cache-run-layers", "Cache RUN layers", CACHE, true),
  bool("compressed-caching", "Compress cached layers (faster, uses more memory)", CACHE, true),
  choice(
    "snapshot-mode",
    "File attributes compared when snapshotting",
    SNAPSHOT,
    SNAPSHOT_MODES,
    "full",
  ),
  bool("single-snapshot", "Take a single snapshot at the end of the build", SNAPSHOT),
  bool("use-new-run", "Experimental RUN change detection without full snapshots", SNAPSHOT),
  list("ignore-path", "path", "Path left out of snapshots", SNAPSHOT),
  bool("ignore-var-run", "Leave /var/run out of snapshots", SNAPSHOT, true),
  bool("cleanup", "Clean the filesystem at the end of the build", SNAPSHOT),
  list("multi-platform", "os/arch,…", "Platforms to build (alias: --platform)", MULTI, {
    parse: parsePlatformList,
  }),
  choice("driver", "Who builds each platform", MULTI, DRIVERS, "local"),
  bool("publish-index", "Push an image index of the per-platform images", MULTI),
  bool("legacy-manifest-list", "Push a Docker manifest list instead of an OCI index", MULTI),
  choice("oci-mode", "Media types of manifests and index", MULTI, OCI_MODES, "auto"),
  list("index-annotations", "k=v[,k=v]", "Annotation of the image index", MULTI, {
    parse: (v, f) => parseKeyValueList(v, f),
  }),
  str("digests-from", "dir", "Directory of per-platform digest files (ci driver)", MULTI),
  bool(
    "require-native-nodes",
    "Build each platform only on a native node (no emulation)",
    MULTI,
    true,
  ),
  str("arch-cache-repo-suffix", "suffix", "Suffix of per-architecture cache repositories", MULTI, {
    default: "-${ARCH}",
  }),
  bool("dry-run", "Validate and plan the build without building or pushing", MULTI),
  ...k8sFlags(),
  bool("sign-images", "Sign pushed images with cosign", SIGN),
  str("cosign-key", "path", "cosign private key (alias: --cosign-key-path)", SIGN),
  {
    ...str("cosign-key-password", "password", "Password of the cosign key", SIGN),
    env: "COSIGN_PASSWORD",
  },
  bool("force", "Force building outside of a container", PROCESS),
  {
    ...str("kaniko-dir", "path", "Kaniko work directory", PROCESS, { default: "/kaniko" }),
    env: "KANIKO_DIR",
  },
  choice(
    "isolation",
    "Run RUN steps in a private root (chroot) or in / (none, Kaniko's model); default: none " +
      "inside a container, chroot outside",
    PROCESS,
    ISOLATIONS,
  ),
  // Aliases, folded into their target flag.
  alias(
    list("platform", "os/arch,…", "Alias of --multi-platform", MULTI, { parse: parsePlatformList }),
    "multi-platform",
  ),
  alias(str("cosign-key-path", "path", "Alias of --cosign-key", SIGN), "cosign-key"),
  deprecated(
    choice("snapshotMode", "Deprecated: use --snapshot-mode", DEPRECATED, SNAPSHOT_MODES),
    "snapshot-mode",
  ),
  deprecated(
    str("customPlatform", "os/arch", "Deprecated: use --custom-platform", DEPRECATED, {
      parse: parsePlatform,
    }),
    "custom-platform",
  ),
  deprecated(str("tarPath", "path", "Deprecated: use --tar-path", DEPRECATED), "tar-path"),
  deprecated({
    ...bool("whitelist-var-run", "Deprecated: use --ignore-var-run", DEPRECATED),
    default: undefined,
  }, "ignore-var-run"),
];

/** Flags of the `k8s` driver (ignored, with a warning, by the other drivers). */
function k8sFlags(): FlagSpec[] {
  return [
    str(
      "kubeconfig",
      "path",
      "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)",
      K8S,
    ),
    str("kube-context", "name", "kubeconfig context to use (default: its current-context)", K8S),
    str(
      "namespace",
      "name",
      "Namespace of the Jobs (default: the context's, the pod's, else default)",
      K8S,
    ),
    str("executor-image", "image", "Image the per-platform Jobs run", K8S, {
      default: DEFAULT_EXECUTOR_IMAGE,
    }),
    str(
      "k8s-registry-secret",
      "name",
      "kubernetes.io/dockerconfigjson Secret mounted as the Jobs' Docker config " +
        "(default: none, the ServiceAccount's or nodes' credentials)",
      K8S,
    ),
    str(
      "k8s-service-account",
      "name",
      "ServiceAccount the Jobs run as (default: namespace's default)",
      K8S,
    ),
    str("k8s-timeout", "duration", "Time limit of the per-platform Jobs, e.g. 45m", K8S, {
      default: 30 * 60_000,
      defaultHelp: "30m",
      parse: parseDuration,
    }),
  ];
}

function bool(name: string, help: string, group: string, value = false): FlagSpec {
  return { name, kind: "bool", help, group, default: value };
}

function int(name: string, help: string, group: string, value = 0): FlagSpec {
  return { name, kind: "int", value: "n", help, group, default: value };
}

function str(
  name: string,
  value: string,
  help: string,
  group: string,
  extra: Partial<FlagSpec> = {},
): FlagSpec {
  return { name, kind: "string", value, help, group, ...extra };
}

function list(
  name: string,
  value: string,
  help: string,
  group: string,
  extra: Partial<FlagSpec> = {},
): FlagSpec {
  return { name, kind: "list", value, help, group, ...extra };
}

function choice(
  name: string,
  help: string,
  group: string,
  choices: readonly string[],
  value?: string,
): FlagSpec {
  return { name, kind: "choice", value: "mode", help, group, choices, default: value };
}

function alias(spec: FlagSpec, target: string): FlagSpec {
  return { ...spec, aliasOf: target, hidden: true };
}

function deprecated(spec: FlagSpec, target: string): FlagSpec {
  return { ...spec, aliasOf: target, deprecated: true };
}
