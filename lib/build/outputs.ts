/**
 * Where a built image goes: every `--destination` (layers uploaded once per repository, mounted
 * when the registry has them elsewhere, tags written last), `--tar-path` (a `docker load`
 * archive), `--oci-layout-path`, and the digest files. Nothing is pushed unless the whole build
 * succeeded: outputs run only after it.
 * @module
 */
import { dirname } from "node:path";
import type { BuildOptions } from "../cli/options.ts";
import { log } from "../log.ts";
import { copyImage } from "../oci/copy.ts";
import { writeDockerArchive } from "../oci/docker_archive.ts";
import { OciLayout } from "../oci/layout.ts";
import { parseReference, type Reference } from "../registry/reference.ts";
import type { RegistrySession } from "../registry/session.ts";
import type { BuiltImage } from "./image.ts";
import { PushProgress } from "./push_progress.ts";

/** What the outputs wrote, for the summary. */
export interface OutputSummary {
  digest: string;
  pushed: string[];
}

/** Writes the image to every output the options name. */
export async function writeOutputs(
  image: BuiltImage,
  opts: BuildOptions,
  session: RegistrySession,
): Promise<OutputSummary> {
  const refs = opts.destinations.map((d) => parseReference(d, { usage: true }));
  const pushed: string[] = [];
  if (!opts.noPush) {
    for (const ref of refs) {
      const sink = session.repository(ref, "push");
      const started = performance.now();
      const progress = new PushProgress(ref.toString(), [
        image.configDescriptor,
        ...image.layers.map((l) => l.descriptor),
      ]);
      const result = await copyImage(image, sink, {
        tags: ref.tag ? [ref.tag] : [],
        concurrency: opts.registry.concurrency,
        onBlob: (desc, what) => progress.done(desc, what),
        onBlobProgress: (desc, n) => progress.progress(desc, n),
      }).finally(() => progress.finish());
      const s = ((performance.now() - started) / 1000).toFixed(1);
      log.info(
        `pushed ${ref.toString()}@${image.manifest.digest} in ${s}s (${result.blobsCopied} ` +
          `layers uploaded, ${result.blobsMounted} mounted, ${result.blobsSkipped} already there)`,
      );
      pushed.push(ref.toString());
    }
  }
  if (opts.tarPath) await writeTar(image, opts.tarPath, refs);
  if (opts.ociLayoutPath) {
    const layout = await OciLayout.open(opts.ociLayoutPath, { create: true });
    // Named like the first destination's tag (else `latest`), so `umoci` and `skopeo oci:DIR:TAG`
    // can address it.
    const tag = refs[0]?.tag ?? "latest";
    await copyImage(image, layout, { tags: [tag] });
    log.info(`wrote the image to the OCI layout ${opts.ociLayoutPath} (tag ${tag})`);
  }
  await writeDigestFiles(image.manifest.digest, opts, refs);
  return { digest: image.manifest.digest, pushed };
}

async function writeTar(image: BuiltImage, path: string, refs: Reference[]): Promise<void> {
  // Kaniko names the image after each destination; without one, after a placeholder.
  const tags = refs.length ? refs.map((r) => tagged(r)) : ["image:latest"];
  await writeDockerArchive(path, { source: image, manifest: image.manifest, tags });
  log.info(`wrote the image to ${path} (load it with docker load -i ${path})`);
}

function tagged(ref: Reference): string {
  return `${ref.registry}/${ref.repository}:${ref.tag ?? "latest"}`;
}

/**
 * Writes `--digest-file` (the digest), `--image-name-with-digest-file` (`REPO@DIGEST` per
 * destination) and `--image-name-tag-with-digest-file` (`REPO:TAG@DIGEST` per destination).
 */
export async function writeDigestFiles(
  digest: string,
  opts: BuildOptions,
  refs: Reference[],
): Promise<void> {
  const write = async (path: string | undefined, text: string) => {
    if (!path) return;
    await Deno.mkdir(dirname(path), { recursive: true });
    await Deno.writeTextFile(path, text);
  };
  await write(opts.digestFile, digest);
  await write(
    opts.imageNameWithDigestFile,
    refs.map((r) => `${r.registry}/${r.repository}@${digest}\n`).join(""),
  );
  await write(
    opts.imageNameTagWithDigestFile,
    refs.map((r) => `${tagged(r)}@${digest}\n`).join(""),
  );
}
