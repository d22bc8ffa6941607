/**
 * File checks shared by the test bed and the test runner.
 * @module
 */

/** True when something (a file, a folder, …) exists at `path`. */
export function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}
