/**
 * `copy SRC DST [--all] [--platform P]`: copies an image or a whole index between registries
 * and OCI layouts, moving only the blobs the destination lacks.
 * @module
 */
import { KanikoError } from "../errors.ts";
import { formatBytes } from "../bytes.ts";
import { log } from "../log.ts";
import { copyImage } from "../oci/copy.ts";
import { parsePlatform } from "../oci/platform.ts";
import type { RegistryOptions } from "../registry/options.ts";
import { RegistrySession } from "../registry/session.ts";
import { openSink, openSource } from "./endpoint.ts";

/** Options of the copy command. */
export interface CopyCommandOptions {
  all: boolean;
  platform?: string;
  registry: RegistryOptions;
}

/** Runs the copy command; prints the digest of what it wrote on stdout. */
export async function copyCommand(
  src: string,
  dst: string,
  options: CopyCommandOptions,
): Promise<void> {
  if (options.all && options.platform) {
    throw new KanikoError("--all and --platform cannot be used together", { exitCode: 2 });
  }
  const platform = options.platform ? parsePlatform(options.platform) : undefined;
  const session = new RegistrySession(options.registry);
  const started = performance.now();
  try {
    const from = await openSource(src, session);
    const to = await openSink(dst, session);
    const result = await copyImage(from.source, to.sink, {
      ref: from.ref,
      manifest: from.manifest,
      tags: to.tags,
      all: options.all,
      platform,
      concurrency: options.registry.concurrency,
      onBlob: (desc, what) => log.debug(`${desc.digest}: ${what}`),
    });
    if (to.digest && to.digest !== result.manifest.digest) {
      throw new KanikoError(
        `copied manifest has digest ${result.manifest.digest}, but ${dst} names ${to.digest}`,
      );
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    log.info(
      `copied ${src} to ${dst} in ${seconds}s: ${result.blobsCopied} blobs uploaded ` +
        `(${formatBytes(result.bytesCopied)}), ${result.blobsMounted} mounted, ` +
        `${result.blobsSkipped} already present`,
    );
    console.log(result.manifest.digest);
  } finally {
    session.close();
  }
}
