/**
 * `digest REF [--platform P]`: prints `sha256:…` of the manifest (of the platform's manifest with
 * `--platform`).
 * @module
 */
import { fetchManifest, type InspectOptions } from "./inspect.ts";

/** Runs the digest command. */
export async function digestCommand(ref: string, options: InspectOptions): Promise<void> {
  const manifest = await fetchManifest(ref, options);
  console.log(manifest.digest);
}
