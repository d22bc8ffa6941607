/**
 * Finding and reading the Dockerfile (`--dockerfile`), and choosing the `.dockerignore` that
 * goes with it.
 *
 * - `http(s)://…`: downloaded (must answer 200), at most 16 MiB.
 * - An absolute path: that file.
 * - A relative path: Kaniko looks in the current directory first, then in the context; the
 *   default (`Dockerfile`, or no value) is looked for in the context first (Docker's rule), then
 *   in the current directory, and `dockerfile` is accepted when `Dockerfile` is missing (as the
 *   docker CLI does). Inside a context, symlinks are followed only while they stay in it.
 *
 * The ignore file is `<Dockerfile>.dockerignore` next to the Dockerfile when it exists, else
 * `.dockerignore` at the context root. The Dockerfile and the ignore file are read whatever
 * `.dockerignore` says; whether COPY sees them is decided by the patterns alone (Docker:
 * "you can't copy the files into the image" when they are excluded, and can when not).
 * @module
 */
import { KanikoError } from "../errors.ts";
import { redactUrl } from "../registry/transport.ts";
import { IgnoreMatcher } from "./dockerignore.ts";
import { httpGet, type HttpOptions } from "./https.ts";
import { cleanPath } from "./pattern.ts";
import { resolveInContext } from "./resolve.ts";
import type { BuildContext } from "./types.ts";

/** The default `--dockerfile`. */
export const DEFAULT_DOCKERFILE = "Dockerfile";
const MAX_DOCKERFILE = 16 * 1024 * 1024;

/** Where a Dockerfile is. */
export type DockerfileLocation =
  | { kind: "url"; url: string; name: string }
  | { kind: "file"; path: string; name: string };

/** A root directory and what may be resolved inside it, for {@link locateDockerfile}. */
type RootLike = Pick<BuildContext, "root" | "description" | "ignore" | "kind">;

/** Finds the Dockerfile named by `spec` (see the module documentation for the order). */
export async function locateDockerfile(
  spec: string | undefined,
  context: RootLike,
  cwd: string = Deno.cwd(),
): Promise<DockerfileLocation> {
  const given = spec === undefined || spec === "" ? DEFAULT_DOCKERFILE : spec;
  if (/^https?:\/\//i.test(given)) return { kind: "url", url: given, name: redactUrl(given) };
  if (given.startsWith("/")) {
    if (await isFile(given)) return { kind: "file", path: given, name: given };
    throw missing(given, context, "it does not exist or is not a file");
  }
  const inCwd = async () => {
    const path = `${cwd}/${given}`;
    return (await isFile(path)) ? path : undefined;
  };
  const isDefault = given === DEFAULT_DOCKERFILE;
  const order = isDefault ? [inContextIgnoringIgnore, inCwd] : [inCwd, inContextIgnoringIgnore];
  for (const find of order) {
    const path = await find();
    if (path) return { kind: "file", path, name: given };
  }
  if (isDefault) {
    const lower = lowerCaseDefault(context);
    if (lower) return { kind: "file", path: lower, name: "dockerfile" };
  }
  throw missing(given, context, "not found in the build context or the current directory");

  // The Dockerfile is read even when .dockerignore lists it.
  function inContextIgnoringIgnore(): string | undefined {
    try {
      return inContextRaw();
    } catch (e) {
      if (e instanceof KanikoError && e.code === "SOURCE_ESCAPES_CONTEXT") {
        // In the user's own directory a symlinked Dockerfile is the user's file (docker and
        // Kaniko follow it); in a downloaded or cloned context it must not read outside.
        if (context.kind === "dir") return statFileSync(`${context.root}/${contextRel(given)}`);
        throw new KanikoError(`Dockerfile ${JSON.stringify(given)}: ${e.message}`, {
          hint: "the Dockerfile inside a context must not be a symlink out of it",
        });
      }
      throw e;
    }
  }
  function inContextRaw(): string | undefined {
    const rel = contextRel(given);
    if (rel === ".." || rel.startsWith("../")) return undefined; // not inside the context
    const r = resolveInContext(unfiltered(context), rel, true, given);
    return r !== null && r.info.isFile ? r.absolute : undefined;
  }
}

function lowerCaseDefault(context: RootLike): string | undefined {
  const r = resolveInContext(unfiltered(context), "dockerfile", true);
  return r !== null && r.info.isFile ? r.absolute : undefined;
}

/**
 * The ignore file for a Dockerfile: `<Dockerfile>.dockerignore` next to it, else the context's
 * `.dockerignore`; undefined when neither exists.
 */
export async function locateIgnoreFile(
  dockerfile: DockerfileLocation | undefined,
  context: RootLike,
): Promise<string | undefined> {
  if (dockerfile?.kind === "file") {
    const specific = dockerfile.path + ".dockerignore";
    if (dockerfile.path.startsWith(context.root + "/")) {
      const rel = dockerfile.path.slice(context.root.length + 1) + ".dockerignore";
      const r = resolveInContext(unfiltered(context), rel, true);
      if (r !== null && r.info.isFile) return r.absolute;
    } else if (await isFile(specific)) {
      return specific;
    }
  }
  const r = resolveInContext(unfiltered(context), ".dockerignore", true);
  // (a .dockerignore symlinked out of a downloaded context is refused by resolveInContext)
  if (r === null) return undefined;
  if (!r.info.isFile) {
    throw new KanikoError(`${r.absolute} is not a file`, {
      hint: ".dockerignore must be a text file of patterns",
    });
  }
  return r.absolute;
}

/** Reads a located Dockerfile. */
export async function readDockerfile(
  location: DockerfileLocation,
  http: HttpOptions & { signal?: AbortSignal } = {},
): Promise<string> {
  if (location.kind === "url") {
    const { response, close } = await httpGet(location.url, `Dockerfile ${location.name}`, http);
    try {
      return await response.text(MAX_DOCKERFILE);
    } catch (e) {
      if (e instanceof KanikoError && e.code === "SIZE_INVALID") {
        throw new KanikoError(`Dockerfile ${location.name} is larger than 16 MiB`);
      }
      throw e;
    } finally {
      close();
    }
  }
  const info = await Deno.stat(location.path);
  if (info.size > MAX_DOCKERFILE) {
    throw new KanikoError(`Dockerfile ${location.name} is larger than 16 MiB`, {
      hint: "check --dockerfile",
    });
  }
  return await Deno.readTextFile(location.path);
}

function missing(given: string, context: RootLike, why: string): KanikoError {
  return new KanikoError(
    `Dockerfile ${JSON.stringify(given)} (context ${context.description}): ${why}`,
    {
      hint: "pass --dockerfile with a path relative to the context or the current directory, " +
        "an absolute path, or an http(s) URL",
      code: "DOCKERFILE_NOT_FOUND",
    },
  );
}

function contextRel(path: string): string {
  return cleanPath(path);
}

/** The context without its ignore rules (the Dockerfile and ignore file are always readable). */
function unfiltered(context: RootLike): BuildContext {
  return {
    root: context.root,
    description: context.description,
    ignore: EMPTY,
    kind: "dir",
    cleanup: () => Promise.resolve(),
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
}

function statFileSync(path: string): string | undefined {
  try {
    return Deno.statSync(path).isFile ? path : undefined;
  } catch {
    return undefined;
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

const EMPTY = IgnoreMatcher.empty();
