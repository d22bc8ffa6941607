/**
 * The shape of a prepared build context, shared by the modules of `lib/context/`.
 * @module
 */
import type { IgnoreMatcher } from "./dockerignore.ts";

/** Where a context came from. */
export type ContextKind = "dir" | "tar" | "stdin" | "http" | "git" | "oci";

/** A prepared build context: a local directory (unpacked if it came as an archive or a repository). */
export interface BuildContext extends AsyncDisposable {
  /** Absolute path of the context root on disk (symlinks resolved). */
  root: string;
  /** Where it came from, for messages: the --context value with any credentials removed. */
  description: string;
  /** The .dockerignore rules in force (already chosen: `<Dockerfile>.dockerignore` wins over `.dockerignore`). */
  ignore: IgnoreMatcher;
  /** The ignore file the rules came from (absolute path), when there is one. */
  ignoreFile?: string;
  /** The kind of source. */
  kind: ContextKind;
  /** For git contexts: the commit checked out. */
  commit?: string;
  /** Removes what prepareContext created (temp dirs); never the user's own directory. */
  cleanup(): Promise<void>;
}
