/**
 * `manifest REF [--platform P]`: prints the manifest or index bytes exactly as served.
 * @module
 */
import { fetchManifest, type InspectOptions } from "./inspect.ts";

/** Runs the manifest command. */
export async function manifestCommand(ref: string, options: InspectOptions): Promise<void> {
  const manifest = await fetchManifest(ref, options);
  await writeAll(Deno.stdout, manifest.bytes);
}

async function writeAll(w: { write(b: Uint8Array): Promise<number> }, bytes: Uint8Array) {
  let off = 0;
  while (off < bytes.byteLength) off += await w.write(bytes.subarray(off));
}
