/**
 * Loading of command modules (`lib/commands/<name>.ts`) on demand, with a clear error when a
 * command's module is not part of this build.
 * @module
 */

import { KanikoError } from "../errors.ts";

/** True when `err` says that `lib/commands/<name>.ts` itself does not exist (not a module it imports). */
export function isMissingCommandModule(err: unknown, name: string): boolean {
  const url = new URL(`../commands/${name}.ts`, import.meta.url).href;
  return err instanceof Error && err.message.startsWith(`Module not found "${url}"`);
}

/**
 * Runs `importer` (a literal `import("../commands/<name>.ts")`, so that bundlers and `deno check`
 * see it). A missing module becomes `the <name> command is not available yet in this version`
 * (exit code 1); any other failure, such as a broken import inside the module, is rethrown.
 */
export async function loadCommandModule<T>(name: string, importer: () => Promise<T>): Promise<T> {
  try {
    return await importer();
  } catch (err) {
    if (isMissingCommandModule(err, name)) {
      throw new KanikoError(`the ${name} command is not available yet in this version`, {
        cause: err,
      });
    }
    throw err;
  }
}

/** Returns `fn` when it is a function, else fails naming the module and the missing export. */
export function requireExport<T>(fn: T, name: string, exportName: string): T {
  if (typeof fn !== "function") {
    throw new KanikoError(`lib/commands/${name}.ts does not export a function ${exportName}`);
  }
  return fn;
}
