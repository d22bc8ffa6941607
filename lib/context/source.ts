/**
 * Parsing of `--context` values into the kinds of build context we support, with Kaniko's
 * prefixes: a plain path or `dir://PATH`, `tar://PATH` and `tar://stdin`, `http(s)://` tarballs,
 * and git repositories: `git://HOST/REPO`, `https://HOST/REPO.git`, `ssh://…` and
 * `git@HOST:REPO`, each with an optional `#REF[:SUBDIR]` (BuildKit's fragment) and a further
 * `#COMMIT` (Kaniko's third part). Kaniko's `gs://`, `s3://` and `az://` are refused.
 * @module
 */
import { UsageError } from "../errors.ts";
import { type OciSource, parseOciSource } from "./oci.ts";

/** Credentials for a remote context (never printed). */
export interface Credentials {
  username: string;
  password: string;
}

/** A git repository to clone. */
export interface GitSource {
  kind: "git";
  /** The repository URL, without credentials and without the fragment. */
  url: string;
  /** `git://` contexts take their transport from `GIT_PULL_METHOD` (Kaniko). */
  pullMethodDefault: boolean;
  /** Branch, tag, full ref or commit; undefined for the default branch. */
  ref?: string;
  /** Sub-directory of the repository to use as the context. */
  subdir?: string;
  /** Commit to check out after fetching `ref` (Kaniko's `#ref#commit`). */
  commit?: string;
  /** Credentials found in the URL (`https://user:token@host/…`). */
  urlCredentials?: Credentials;
}

/** What a `--context` value names. */
export type ContextSource =
  | { kind: "dir"; path: string }
  | { kind: "tar"; path: string }
  | { kind: "stdin" }
  | { kind: "http"; url: string; credentials?: Credentials }
  | OciSource
  | GitSource;

/** The supported forms, for error messages. */
export const SUPPORTED_CONTEXTS =
  "a directory (PATH or dir://PATH), tar://PATH, tar://stdin, an http(s):// tarball URL, " +
  "or a git repository (git://HOST/REPO, https://HOST/REPO.git, ssh://…, git@HOST:REPO, " +
  "with #REF[:SUBDIR]), or an OCI artifact (oci://REGISTRY/REPO@sha256:DIGEST)";

const CLOUD: Record<string, string> = {
  "gs": "Google Cloud Storage",
  "s3": "Amazon S3",
  "az": "Azure Blob Storage",
};

/** Parses a `--context` value. Throws a {@link UsageError} for an unsupported or malformed one. */
export function parseContextSpec(spec: string): ContextSource {
  if (spec === "") {
    throw new UsageError("--context is empty", { hint: `pass ${SUPPORTED_CONTEXTS}` });
  }
  if (/^git@[^:/]+:/.test(spec)) return gitSource(spec, spec.split("#")[0], false);
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(spec)?.[1]?.toLowerCase();
  if (scheme === undefined) return { kind: "dir", path: spec };
  const rest = spec.slice(scheme.length + 3);
  switch (scheme) {
    case "dir":
      if (rest === "") throw new UsageError(`--context ${spec}: the directory is missing`);
      return { kind: "dir", path: rest };
    case "tar":
      if (rest === "") throw new UsageError(`--context ${spec}: the archive path is missing`);
      return rest === "stdin" ? { kind: "stdin" } : { kind: "tar", path: rest };
    case "git": {
      if (rest === "" || rest.startsWith("#")) {
        throw new UsageError(`--context ${describeSpec(spec)}: the repository is missing`);
      }
      return gitSource(spec, spec.split("#")[0], true);
    }
    case "oci":
      return parseOciSource(rest, spec);
    case "ssh":
    case "git+ssh":
      return gitSource(spec, spec.split("#")[0], false);
    case "http":
    case "https": {
      const base = spec.split("#")[0];
      const url = parseUrl(base, spec);
      if (/\.git\/?$/.test(url.pathname)) return gitSource(spec, base, false);
      const credentials = takeCredentials(url);
      return { kind: "http", url: url.toString(), credentials };
    }
    default: {
      const cloud = CLOUD[scheme];
      const what = cloud ? `${cloud} contexts (${scheme}://) are` : `the scheme ${scheme}:// is`;
      throw new UsageError(`--context ${describeSpec(spec)}: ${what} not supported`, {
        hint: `use ${SUPPORTED_CONTEXTS}`,
      });
    }
  }
}

function gitSource(spec: string, base: string, pullMethodDefault: boolean): GitSource {
  const fragment = spec.includes("#") ? spec.slice(spec.indexOf("#") + 1) : "";
  const parts = fragment === "" ? [] : fragment.split("#");
  if (parts.length > 2) {
    throw new UsageError(`--context ${describeSpec(spec)}: too many # parts`, {
      hint: "write REPO#REF[:SUBDIR] or REPO#REF#COMMIT",
    });
  }
  let ref: string | undefined = parts[0] ?? "";
  let subdir: string | undefined;
  const colon = ref.indexOf(":");
  if (colon >= 0) {
    subdir = ref.slice(colon + 1);
    ref = ref.slice(0, colon);
  }
  const commit = parts[1] || undefined;
  if (commit !== undefined && !/^[0-9a-fA-F]{4,64}$/.test(commit)) {
    throw new UsageError(
      `--context ${describeSpec(spec)}: ${JSON.stringify(commit)} is not a commit`,
      {
        hint: "the part after a second # must be a commit hash",
      },
    );
  }
  let url = base;
  let urlCredentials: Credentials | undefined;
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(base) && !base.startsWith("git://")) {
    const parsed = parseUrl(base, spec);
    urlCredentials = takeCredentials(parsed);
    url = parsed.toString();
  } else if (base.startsWith("git://")) {
    const parsed = parseUrl("https://" + base.slice(6), spec);
    urlCredentials = takeCredentials(parsed);
    url = "git://" + parsed.toString().slice("https://".length);
  }
  return {
    kind: "git",
    url,
    pullMethodDefault,
    ref: ref || undefined,
    subdir: subdir || undefined,
    commit,
    urlCredentials,
  };
}

function parseUrl(text: string, spec: string): URL {
  try {
    return new URL(text);
  } catch {
    throw new UsageError(`--context ${describeSpec(spec)}: not a valid URL`);
  }
}

/** Removes and returns the user:password of a URL. */
function takeCredentials(url: URL): Credentials | undefined {
  if (url.username === "" && url.password === "") return undefined;
  const credentials = {
    username: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
  };
  url.username = "";
  url.password = "";
  return credentials;
}

/** A context value fit for messages: the password (or token) of a URL is removed. */
export function describeSpec(spec: string): string {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^/@#?]*)@/.exec(spec);
  if (!m) return spec;
  const user = m[2].includes(":") ? m[2].slice(0, m[2].indexOf(":")) + ":***" : "***";
  return m[1] + user + "@" + spec.slice(m[0].length);
}
