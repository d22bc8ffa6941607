/** Helpers of the snapshot tests. */
import { join } from "node:path";

/** Writes `files` (path → content; a path ending in / is a directory) under `root`. */
export async function writeTree(root: string, files: Record<string, string>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    if (path.endsWith("/")) {
      await Deno.mkdir(join(root, path), { recursive: true });
    } else {
      await Deno.mkdir(join(root, path, ".."), { recursive: true });
      await Deno.writeTextFile(join(root, path), content);
    }
  }
}
