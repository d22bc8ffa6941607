/**
 * The program's name and version: the one place they are defined.
 * @module
 */

/** The program name printed by `version`. */
export const PROGRAM_NAME = "kaniko-deno";

/** The release version (semver, without a leading `v`). */
export const VERSION = "0.1.0";

/** `kaniko-deno 0.1.0`: what the `version` command prints. */
export function versionString(): string {
  return `${PROGRAM_NAME} ${VERSION}`;
}
