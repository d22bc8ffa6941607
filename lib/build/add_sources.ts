/**
 * The remote sources of `ADD`, fetched into a private temporary directory before they are
 * copied into the stage root, with BuildKit's rules:
 *
 * - {@link classifyAddSource}: which arguments are git repositories (`git@host:repo`, `git://`,
 *   `ssh://`, `https://…/repo.git`, each with `#ref[:subdir]`), which are URLs (`http(s)://`), and
 *   which are paths in the context;
 * - {@link downloadUrl}: the file is named after the last component of the URL path
 *   (`__unnamed__` when there is none), gets mode 0600 and the `Last-Modified` time (the epoch
 *   when the server sends none), and `--checksum=sha256:…` (or sha384/sha512) is verified;
 * - {@link cloneGitSource}: a shallow clone of the ref (through lib/context's git support), the
 *   `.git` directory removed unless `--keep-git-dir`, `--checksum` compared with the commit.
 * @module
 */
import { createHash } from "node:crypto";
import { KanikoError } from "../errors.ts";
import { cloneGit, type GitCloneOptions } from "../context/git.ts";
import { httpGet, type HttpOptions } from "../context/https.ts";
import { describeSpec, type GitSource, parseContextSpec } from "../context/source.ts";

/** What an ADD source argument names. */
export type AddSourceKind = "git" | "url" | "local";

/** BuildKit's split of ADD arguments into git repositories, URLs and context paths. */
export function classifyAddSource(arg: string): AddSourceKind {
  if (/^git@[^:/]+:/.test(arg)) return "git";
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(arg)?.[1]?.toLowerCase();
  if (scheme === "git" || scheme === "ssh" || scheme === "git+ssh") return "git";
  if (scheme === "http" || scheme === "https") {
    try {
      if (/\.git\/?$/.test(new URL(arg.split("#")[0]).pathname)) return "git";
    } catch {
      return "url";
    }
    return "url";
  }
  return "local";
}

/** A file fetched from a URL. */
export interface Download {
  /** Where it was saved. */
  path: string;
  /** Its name in the destination (a directory destination). */
  name: string;
  /** `Last-Modified`, in ns since the epoch (0 without the header). */
  mtimeNs: bigint;
  /** `sha256:…` of the content. */
  digest: string;
}

/** Go's `path.Base`. */
function goBase(p: string): string {
  if (p === "") return ".";
  const trimmed = p.replace(/\/+$/, "");
  if (trimmed === "") return "/";
  return trimmed.slice(trimmed.lastIndexOf("/") + 1);
}

/** The name BuildKit gives a downloaded file: the URL path's last component. */
export function urlFileName(url: string): string {
  let path: string;
  try {
    path = decodeURIComponent(new URL(url).pathname);
  } catch {
    return "__unnamed__";
  }
  const base = goBase(path);
  return base === "." || base === "/" ? "__unnamed__" : base;
}

const DIGESTS: Record<string, { node: string; hex: number }> = {
  sha256: { node: "sha256", hex: 64 },
  sha384: { node: "sha384", hex: 96 },
  sha512: { node: "sha512", hex: 128 },
};

/** Checks an `--checksum` value for a URL: `ALGO:HEX`. */
function parseChecksum(checksum: string): { algo: string; hex: string } {
  const [algo, hex] = checksum.split(":", 2);
  const spec = DIGESTS[algo];
  if (!spec || hex === undefined || hex.length !== spec.hex || !/^[0-9a-f]+$/.test(hex)) {
    throw new KanikoError(`invalid --checksum ${JSON.stringify(checksum)}`, {
      hint: "write --checksum=sha256:<64 lowercase hex digits> (or sha384, sha512)",
      code: "INVALID_CHECKSUM",
    });
  }
  return { algo, hex };
}

/**
 * Downloads `url` into the directory `dir`, hashing as it goes; with `checksum`, a different
 * content is an error (nothing is copied).
 */
export async function downloadUrl(
  url: string,
  dir: string,
  options: { checksum?: string; http?: HttpOptions; signal?: AbortSignal } = {},
): Promise<Download> {
  const want = options.checksum ? parseChecksum(options.checksum) : undefined;
  const shown = describeSpec(url);
  const what = `ADD ${shown}`;
  const { response, close } = await httpGet(url, what, { ...options.http, signal: options.signal });
  const name = urlFileName(url);
  const path = `${dir}/download`;
  const hash = createHash(want ? DIGESTS[want.algo].node : "sha256");
  try {
    const file = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
    try {
      for await (const chunk of response.body ?? []) {
        hash.update(chunk);
        let off = 0;
        while (off < chunk.length) off += await file.write(chunk.subarray(off));
      }
    } finally {
      file.close();
    }
  } catch (e) {
    if (e instanceof KanikoError) throw e;
    throw new KanikoError(`${what}: the download failed: ${(e as Error).message ?? e}`, {
      hint: "try again; check the network and the URL",
      cause: e,
    });
  } finally {
    close();
  }
  const hex = hash.digest("hex");
  const algo = want?.algo ?? "sha256";
  if (want && want.hex !== hex) {
    throw new KanikoError(
      `${what}: checksum mismatch: the content is ${algo}:${hex}, --checksum wants ${algo}:${want.hex}`,
      { hint: "the file at the URL changed, or the --checksum value is wrong", code: "CHECKSUM" },
    );
  }
  return {
    path,
    name,
    mtimeNs: lastModified(response.headers.get("last-modified")),
    digest: `${algo}:${hex}`,
  };
}

/** `Last-Modified` as ns since the epoch; 0 when absent or unreadable (BuildKit). */
function lastModified(header: string | null): bigint {
  if (!header) return 0n;
  const ms = Date.parse(header);
  return Number.isFinite(ms) ? BigInt(ms) * 1_000_000n : 0n;
}

/** A cloned repository. */
export interface Checkout {
  /** The directory to copy (the repository, or its `:subdir`). */
  dir: string;
  /** The commit checked out. */
  commit: string;
}

/**
 * Clones the git source `spec` (an ADD argument) into `dir/repo`. The `.git` directory is
 * removed unless `keepGitDir`; `checksum` must match the commit (a prefix of it is enough).
 */
export async function cloneGitSource(
  spec: string,
  dir: string,
  options: {
    keepGitDir?: boolean;
    checksum?: string;
    git?: GitCloneOptions;
    env?: (name: string) => string | undefined;
    signal?: AbortSignal;
  } = {},
): Promise<Checkout> {
  const parsed = parseContextSpec(spec);
  if (parsed.kind !== "git") {
    throw new KanikoError(`ADD ${describeSpec(spec)}: not a git repository URL`);
  }
  // ADD takes git:// literally (BuildKit); Kaniko's GIT_PULL_METHOD is for --context only.
  const source: GitSource = { ...parsed, pullMethodDefault: false };
  const dest = `${dir}/repo`;
  const scratch = `${dir}/scratch`;
  await Deno.mkdir(scratch, { mode: 0o700 });
  const commit = await cloneGit(source, {
    dest,
    scratch,
    git: options.git,
    env: options.env,
    description: describeSpec(spec),
    signal: options.signal,
  });
  if (options.checksum !== undefined) {
    const want = options.checksum.replace(/^sha1:/, "").toLowerCase();
    if (want === "" || !commit.startsWith(want)) {
      throw new KanikoError(
        `ADD ${
          describeSpec(spec)
        }: checksum mismatch: the commit is ${commit}, --checksum wants ${options.checksum}`,
        { hint: "point --checksum at the commit the ref resolves to", code: "CHECKSUM" },
      );
    }
  }
  if (!options.keepGitDir) await Deno.remove(`${dest}/.git`, { recursive: true });
  let checkout = dest;
  if (source.subdir) {
    const sub = source.subdir.split("/").filter((p) => p !== "" && p !== ".");
    if (sub.includes("..")) {
      throw new KanikoError(
        `ADD ${describeSpec(spec)}: the sub-directory must stay inside the repository`,
      );
    }
    checkout = [dest, ...sub].join("/");
    const info = await Deno.lstat(checkout).catch(() => undefined);
    if (!info?.isDirectory) {
      throw new KanikoError(
        `ADD ${describeSpec(spec)}: ${
          JSON.stringify(source.subdir)
        } is not a directory of the repository`,
      );
    }
  }
  return { dir: checkout, commit };
}
