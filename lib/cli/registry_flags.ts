/**
 * Registry, TLS and retry flags (every command that talks to a registry), the transfer flags of
 * `copy`, and the mapping of all of them to {@link RegistryOptions}.
 * @module
 */

import { UsageError } from "../errors.ts";
import { defaultRegistryOptions, type RegistryOptions } from "../registry/options.ts";
import type { EnvLookup, FlagSpec, FlagValues } from "./flag_spec.ts";
import { parseByteSize, parseKeyValue, quote } from "./values.ts";

const REGISTRY = "Registry, TLS and credentials";
const RETRY = "Retries";
const TRANSFER = "Transfer";

/** A `--registry-client-cert` entry. */
type ClientCert = [string, { cert: string; key: string }];

/** Parses `HOST=CERT,KEY`. */
export function parseClientCert(value: string, flag: string): ClientCert {
  const [host, files] = parseKeyValue(value, flag, { form: "HOST=CERT,KEY" });
  const [cert, key, extra] = files.split(",");
  if (!cert || !key || extra !== undefined) {
    throw new UsageError(`invalid value ${quote(value)} for ${flag}: expected HOST=CERT,KEY`);
  }
  return [host, { cert, key }];
}

/** Parses `ORIG=NEW[/prefix][;ORIG2=NEW2…]` into pairs, in order. */
export function parseRegistryMap(value: string, flag: string): [string, string][] {
  return value.split(";").filter((piece) => piece.trim() !== "").map((piece) =>
    parseKeyValue(piece.trim(), flag, { form: "ORIG=NEW[;ORIG2=NEW2…]" })
  );
}

/** Registry and TLS flags (Kaniko's names and defaults). */
export const REGISTRY_FLAGS: readonly FlagSpec[] = [
  bool("insecure", "Push to insecure registry using plain HTTP"),
  bool("insecure-pull", "Pull from insecure registry using plain HTTP"),
  list("insecure-registry", "HOST", "Registry reached over plain HTTP to push and pull"),
  bool(
    "skip-tls-verify",
    "Push to insecure registry ignoring TLS verify (pulls too, as in Kaniko)",
  ),
  bool("skip-tls-verify-pull", "Pull from insecure registry ignoring TLS verify"),
  list("skip-tls-verify-registry", "HOST", "Registry whose TLS certificate is not verified"),
  {
    ...list("registry-certificate", "HOST=PATH", "CA certificate (PEM) trusted for a registry"),
    parse: (value, flag) => [parseKeyValue(value, flag, { form: "HOST=PATH" })],
  },
  {
    ...list("registry-client-cert", "HOST=CERT,KEY", "Client certificate and key for mTLS"),
    parse: (value, flag) => [parseClientCert(value, flag)],
  },
  {
    ...list("registry-mirror", "HOST[/PATH]", "Mirror of docker.io used as pull-through cache"),
    env: "KANIKO_REGISTRY_MIRROR",
  },
  {
    ...list("registry-map", "ORIG=NEW;…", "Replacement registries, tried in order"),
    parse: parseRegistryMap,
    env: "KANIKO_REGISTRY_MAP",
  },
  bool(
    "skip-default-registry-fallback",
    "Fail instead of falling back to the original registry when no mirror has the image",
  ),
];

/** Retry flags of every command that talks to a registry. */
export const RETRY_FLAGS: readonly FlagSpec[] = [
  int("push-retry", "Number of retries for the push operation", 0),
  int("push-retry-initial-delay", "Delay before the first push retry, in milliseconds", 1000),
  int("push-retry-max-delay", "Longest delay between push retries, in milliseconds", 30000),
  int("image-download-retry", "Number of retries for downloading the remote image", 0),
];

/** Transfer flags of `copy`. */
export const TRANSFER_FLAGS: readonly FlagSpec[] = [
  {
    name: "upload-chunk-size",
    kind: "int",
    value: "bytes",
    help: "Upload blobs in chunks of this size (e.g. 5MiB); 0 = one monolithic PUT",
    group: TRANSFER,
    default: 0,
    parse: parseByteSize,
  },
  {
    name: "jobs",
    kind: "int",
    value: "n",
    help: "Blobs transferred in parallel",
    group: TRANSFER,
    default: 4,
    min: 1,
  },
];

/**
 * Builds {@link RegistryOptions} from parsed flags and the environment (`KANIKO_REGISTRY_MIRROR`,
 * `KANIKO_REGISTRY_MAP`, `DOCKER_CONFIG`). Flags a command lacks keep their defaults.
 */
export function registryOptionsFrom(flags: FlagValues, env: EnvLookup): RegistryOptions {
  const options = defaultRegistryOptions();
  if (flags.has("insecure")) Object.assign(options, tlsOptions(flags, env));
  if (flags.has("push-retry")) Object.assign(options, retryOptions(flags));
  if (flags.has("upload-chunk-size")) options.uploadChunkSize = flags.number("upload-chunk-size");
  if (flags.has("jobs")) options.concurrency = flags.number("jobs");
  const dockerConfig = env("DOCKER_CONFIG");
  if (dockerConfig) options.dockerConfigDir = dockerConfig;
  return options;
}

function tlsOptions(flags: FlagValues, env: EnvLookup): Partial<RegistryOptions> {
  const mirrors = flags.list("registry-mirror");
  const mirrorEnv = env("KANIKO_REGISTRY_MIRROR");
  if (mirrorEnv) mirrors.push(...mirrorEnv.split(",").map((m) => m.trim()).filter(Boolean));
  const mapPairs = flags.list<[string, string]>("registry-map");
  const mapEnv = env("KANIKO_REGISTRY_MAP");
  if (mapEnv) mapPairs.push(...parseRegistryMap(mapEnv, "KANIKO_REGISTRY_MAP"));
  const registryMap: Record<string, string[]> = {};
  for (const [from, to] of mapPairs) (registryMap[from] ??= []).push(to);
  return {
    insecure: flags.bool("insecure"),
    insecurePull: flags.bool("insecure-pull"),
    insecureRegistries: flags.list("insecure-registry"),
    skipTlsVerify: flags.bool("skip-tls-verify"),
    skipTlsVerifyPull: flags.bool("skip-tls-verify-pull"),
    skipTlsVerifyRegistries: flags.list("skip-tls-verify-registry"),
    registryCertificates: Object.fromEntries(flags.list<[string, string]>("registry-certificate")),
    registryClientCerts: Object.fromEntries(flags.list<ClientCert>("registry-client-cert")),
    registryMirrors: mirrors,
    registryMap,
    skipDefaultRegistryFallback: flags.bool("skip-default-registry-fallback"),
  };
}

function retryOptions(flags: FlagValues): Partial<RegistryOptions> {
  const initial = flags.number("push-retry-initial-delay");
  const max = flags.number("push-retry-max-delay");
  if (max < initial) {
    throw new UsageError(
      `--push-retry-max-delay (${max} ms) is less than --push-retry-initial-delay (${initial} ms)`,
      { hint: "raise --push-retry-max-delay or lower --push-retry-initial-delay" },
    );
  }
  return {
    pushRetry: flags.number("push-retry"),
    pushRetryInitialDelay: initial,
    pushRetryMaxDelay: max,
    imageDownloadRetry: flags.number("image-download-retry"),
  };
}

function bool(name: string, help: string): FlagSpec {
  return { name, kind: "bool", help, group: REGISTRY, default: false };
}

function list(name: string, value: string, help: string): FlagSpec {
  return { name, kind: "list", value, help, group: REGISTRY };
}

function int(name: string, help: string, value: number): FlagSpec {
  return { name, kind: "int", value: "n", help, group: RETRY, default: value };
}
