/**
 * Image references: Docker's grammar and normalisation (distribution/reference
 * `ParseNormalizedNamed`): `busybox` is `docker.io/library/busybox:latest`, a first path component
 * is a registry host only when it contains `.` or `:`, is `localhost` or has an uppercase letter,
 * `index.docker.io` is `docker.io`. Also the API host of a registry and the ordered pull candidates
 * of Kaniko's `--registry-map` / `--registry-mirror` / `--skip-default-registry-fallback`.
 * @module
 */
import { KanikoError, UsageError } from "../errors.ts";
import type { RegistryOptions } from "./options.ts";

/** The registry of unqualified references. */
export const DEFAULT_REGISTRY = "docker.io";
/** The host that serves the registry API of {@link DEFAULT_REGISTRY}. */
export const DEFAULT_REGISTRY_API_HOST = "registry-1.docker.io";
/** The longest allowed name (`registry/repository`), as in distribution. */
export const NAME_TOTAL_LENGTH_MAX = 255;

const DOCKER_HUB_ALIASES = new Set(["docker.io", "index.docker.io", "registry-1.docker.io"]);
const OFFICIAL_PREFIX = "library/";

// The grammar of distribution/reference (regexp.go).
const ALNUM = "[a-z0-9]+";
const SEPARATOR = "(?:[._]|__|[-]+)";
const PATH_COMPONENT = `${ALNUM}(?:${SEPARATOR}${ALNUM})*`;
const PATH = `${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;
const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const IPV6 = "\\[(?:[a-fA-F0-9:]+)\\]";
const HOST = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|${IPV6})`;
const DOMAIN = `${HOST}(?::[0-9]+)?`;
const TAG = "[\\w][\\w.-]{0,127}";
const DIGEST = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
const REFERENCE_RE = new RegExp(`^((?:${DOMAIN}/)?${PATH})(?::(${TAG}))?(?:@(${DIGEST}))?$`);
const DOMAIN_RE = new RegExp(`^${DOMAIN}$`);
const PATH_RE = new RegExp(`^${PATH}$`);
const TAG_RE = new RegExp(`^${TAG}$`);
const DIGEST_RE = new RegExp(`^${DIGEST}$`);
const IDENTIFIER_RE = /^[a-f0-9]{64}$/;
const DIGEST_HEX_LENGTH: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

/** The parts of a {@link Reference}. */
export interface ReferenceParts {
  /** Normalised registry host, with port: `docker.io`, `localhost:5000`, `[::1]:5000`. */
  registry: string;
  /** Repository path inside the registry: `library/busybox`. */
  repository: string;
  /** Tag, when the reference has one. */
  tag?: string;
  /** Digest, when the reference has one; it wins over the tag for fetching. */
  digest?: string;
}

/** A normalised image reference. Immutable; build one with {@link parseReference}. */
export class Reference implements ReferenceParts {
  /** Normalised registry host, with port: `docker.io`, `localhost:5000`, `[::1]:5000`. */
  readonly registry: string;
  /** Repository path inside the registry: `library/busybox`. */
  readonly repository: string;
  /** Tag, when the reference has one. */
  readonly tag?: string;
  /** Digest, when the reference has one; it wins over the tag for fetching. */
  readonly digest?: string;

  /** Wraps already validated parts (use {@link parseReference} for text). */
  constructor(parts: ReferenceParts) {
    this.registry = parts.registry;
    this.repository = parts.repository;
    if (parts.tag !== undefined) this.tag = parts.tag;
    if (parts.digest !== undefined) this.digest = parts.digest;
  }

  /** `registry/repository`, fully qualified. */
  get name(): string {
    return `${this.registry}/${this.repository}`;
  }

  /** What to fetch the manifest by: the digest if there is one, else the tag (`latest` if none). */
  get identifier(): string {
    return this.digest ?? this.tag ?? "latest";
  }

  /** The fully qualified form: `docker.io/library/busybox:1.36@sha256:…`. */
  toString(): string {
    return this.name + suffix(this);
  }

  /** The short form Docker shows: `busybox:1.36`, `user/img`, `localhost:5000/x:1`. */
  familiar(): string {
    let name = this.name;
    if (this.registry === DEFAULT_REGISTRY) {
      name = this.repository;
      const rest = name.slice(OFFICIAL_PREFIX.length);
      if (name.startsWith(OFFICIAL_PREFIX) && !rest.includes("/")) name = rest;
    }
    return name + suffix(this);
  }

  /** The same reference pinned to `digest`, keeping its tag for display. */
  withDigest(digest: string): Reference {
    return new Reference({ ...this.parts(), digest: checkDigest(digest, this.name) });
  }

  /** The same repository at `tag`, without a digest. */
  withTag(tag: string): Reference {
    if (!TAG_RE.test(tag)) {
      throw new KanikoError(`invalid tag "${tag}" for ${this.name}`, {
        hint: "a tag is up to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'",
      });
    }
    return new Reference({ registry: this.registry, repository: this.repository, tag });
  }

  /** The same repository on another registry and/or with another repository path. */
  withName(registry: string, repository: string): Reference {
    return new Reference({ ...this.parts(), registry, repository });
  }

  /** The same repository without tag or digest. */
  repositoryOnly(): Reference {
    return new Reference({ registry: this.registry, repository: this.repository });
  }

  private parts(): ReferenceParts {
    return {
      registry: this.registry,
      repository: this.repository,
      tag: this.tag,
      digest: this.digest,
    };
  }
}

function suffix(ref: ReferenceParts): string {
  return (ref.tag !== undefined ? `:${ref.tag}` : "") +
    (ref.digest !== undefined ? `@${ref.digest}` : "");
}

/** Options of {@link parseReference}. */
export interface ParseReferenceOptions {
  /** Give a reference without tag or digest the tag `latest` (default true). */
  defaultTag?: boolean;
  /** Throw a {@link UsageError} (exit code 2) instead: the text came from a flag. */
  usage?: boolean;
}

/**
 * Parses and normalises an image reference (`busybox`, `user/img:1`, `host:5000/a/b@sha256:…`,
 * `img:1@sha256:…` which keeps both). Throws a one-line {@link KanikoError} saying what is wrong.
 */
export function parseReference(text: string, options: ParseReferenceOptions = {}): Reference {
  const fail = (reason: string, hint?: string): never => {
    const message = `invalid reference "${clip(text)}": ${reason}`;
    throw options.usage ? new UsageError(message, { hint }) : new KanikoError(message, { hint });
  };
  if (text === "") fail("the reference is empty");
  if (IDENTIFIER_RE.test(text)) {
    fail("a 64-character hexadecimal string is an image ID, not a repository name");
  }
  const [domain, remainder] = splitDomain(text);
  const tagAt = remainder.indexOf(":");
  const remote = tagAt >= 0 ? remainder.slice(0, tagAt) : remainder;
  if (remote.toLowerCase() !== remote) fail("repository name must be lowercase");
  const m = REFERENCE_RE.exec(`${domain}/${remainder}`);
  if (!m) return fail(explainInvalid(text), "expected [REGISTRY/]REPOSITORY[:TAG][@DIGEST]");
  if (m[1].length > NAME_TOTAL_LENGTH_MAX) {
    fail(`repository name must not be longer than ${NAME_TOTAL_LENGTH_MAX} characters`);
  }
  const digest = m[3];
  const problem = digest === undefined ? undefined : digestProblem(digest);
  if (problem) fail(problem);
  const tag = m[2] ?? (digest === undefined && options.defaultTag !== false ? "latest" : undefined);
  return new Reference({
    registry: domain,
    repository: m[1].slice(domain.length + 1),
    tag,
    digest,
  });
}

/**
 * Parses a repository (for `tags REPO`): a reference without tag or digest, normalised the same
 * way (`busybox` is `docker.io/library/busybox`).
 */
export function parseRepository(
  text: string,
  options: Pick<ParseReferenceOptions, "usage"> = {},
): Reference {
  const ref = parseReference(text, { defaultTag: false, usage: options.usage });
  if (ref.tag !== undefined || ref.digest !== undefined) {
    const message = `invalid repository "${clip(text)}": a repository has no tag or digest`;
    const hint = `use ${ref.name}`;
    throw options.usage ? new UsageError(message, { hint }) : new KanikoError(message, { hint });
  }
  return ref;
}

/** The host serving the registry API for `registry`: `registry-1.docker.io` for Docker Hub. */
export function apiHost(registry: string): string {
  return normalizeRegistry(registry) === DEFAULT_REGISTRY ? DEFAULT_REGISTRY_API_HOST : registry;
}

/** `index.docker.io` and `registry-1.docker.io` are `docker.io`; other hosts are kept as given. */
export function normalizeRegistry(registry: string): string {
  return DOCKER_HUB_ALIASES.has(registry.toLowerCase()) ? DEFAULT_REGISTRY : registry;
}

/**
 * The ordered references to pull `ref` from, as Kaniko does: each `--registry-map` entry for its
 * registry (a value `new/prefix` prepends `prefix/` to the repository), then each
 * `--registry-mirror` when it is Docker Hub (the repository keeps `library/`), then the original
 * unless mapped candidates exist and `--skip-default-registry-fallback` is set.
 */
export function pullCandidates(
  ref: Reference,
  options: Pick<RegistryOptions, "registryMap" | "registryMirrors" | "skipDefaultRegistryFallback">,
): Reference[] {
  const registry = normalizeRegistry(ref.registry);
  const values: string[] = [];
  for (const [key, list] of Object.entries(options.registryMap)) {
    if (normalizeRegistry(key) === registry) values.push(...list);
  }
  if (registry === DEFAULT_REGISTRY) values.push(...options.registryMirrors);
  const out: Reference[] = [];
  const seen = new Set<string>();
  for (const value of values) {
    const { host, prefix } = parseMapping(value);
    const candidate = ref.withName(host, prefix + ref.repository);
    if (!seen.has(candidate.toString())) out.push(candidate);
    seen.add(candidate.toString());
  }
  if (out.length === 0 || !options.skipDefaultRegistryFallback) {
    if (!seen.has(ref.toString())) out.push(ref);
  }
  return out;
}

/** Splits a `--registry-map` value or mirror `host[/prefix]` (an `https://` prefix is tolerated). */
export function parseMapping(value: string): { host: string; prefix: string } {
  const bare = value.trim().replace(/^https?:\/\//i, "").replace(/\/+$/, "");
  const slash = bare.indexOf("/");
  const host = slash >= 0 ? bare.slice(0, slash) : bare;
  const path = slash >= 0 ? bare.slice(slash + 1) : "";
  if (!DOMAIN_RE.test(host)) {
    throw new UsageError(
      `invalid registry mirror or map value "${clip(value)}": bad registry host`,
      {
        hint: "expected HOST[:PORT][/PREFIX], e.g. mirror.gcr.io or harbor.local/dockerhub",
      },
    );
  }
  if (path && !PATH_RE.test(path)) {
    throw new UsageError(
      `invalid registry mirror or map value "${clip(value)}": bad repository prefix "${path}"`,
      { hint: "a prefix is lowercase path components separated by '/'" },
    );
  }
  return { host: normalizeRegistry(host), prefix: path ? `${path}/` : "" };
}

/** Splits `text` into its registry and the rest, as distribution's `splitDockerDomain`. */
function splitDomain(text: string): [string, string] {
  const i = text.indexOf("/");
  const first = i >= 0 ? text.slice(0, i) : "";
  let domain: string;
  let rest: string;
  if (
    i < 0 ||
    (!/[.:]/.test(first) && first !== "localhost" && first.toLowerCase() === first)
  ) {
    [domain, rest] = [DEFAULT_REGISTRY, text];
  } else {
    [domain, rest] = [first, text.slice(i + 1)];
  }
  domain = normalizeRegistry(domain);
  if (domain === DEFAULT_REGISTRY && !rest.includes("/")) rest = OFFICIAL_PREFIX + rest;
  return [domain, rest];
}

/** Validates a digest of `name`: grammar, and the hex length of known algorithms. */
function checkDigest(digest: string, name: string): string {
  const problem = digestProblem(digest);
  if (problem) {
    throw new KanikoError(`${problem} for ${name}`, {
      hint: "a digest looks like sha256:<64 lowercase hex digits>",
    });
  }
  return digest;
}

/** What is wrong with `digest`, or undefined when it is valid. */
function digestProblem(digest: string): string | undefined {
  if (!DIGEST_RE.test(digest)) return `invalid digest "${clip(digest)}"`;
  const [algorithm, hex] = digest.split(":");
  const length = DIGEST_HEX_LENGTH[algorithm];
  if (length === undefined) return `unsupported digest algorithm "${algorithm}"`;
  if (hex.length !== length || !/^[a-f0-9]+$/.test(hex)) {
    return `invalid ${algorithm} digest "${clip(digest)}": expected ${length} lowercase hex digits`;
  }
  return undefined;
}

/** A short reason why `text` does not match the reference grammar. */
function explainInvalid(text: string): string {
  const at = text.indexOf("@");
  const beforeDigest = at >= 0 ? text.slice(0, at) : text;
  const lastColon = beforeDigest.lastIndexOf(":");
  const tag = lastColon > beforeDigest.lastIndexOf("/") ? beforeDigest.slice(lastColon + 1) : "";
  if (at === 0 || beforeDigest.startsWith(":")) return "the repository name is missing";
  if (at >= 0 && !DIGEST_RE.test(text.slice(at + 1))) return "the digest is malformed";
  if (lastColon >= 0 && tag !== "" && !TAG_RE.test(tag) && !/[/\]]/.test(tag)) {
    return `invalid tag "${clip(tag)}"`;
  }
  return "invalid reference format";
}

function clip(text: string): string {
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}
