/**
 * Copy: `source → sink` for an image or a whole index. Only what the sink lacks moves: a child
 * manifest the sink already holds is skipped with its blobs, and each blob is checked before it
 * is uploaded (or mounted, when source and sink share a registry). Blobs move in parallel,
 * bounded; manifests are written children first, tags last, so no tag ever points at content
 * the sink does not hold.
 * @module
 */
import { KanikoError } from "../errors.ts";
import type { ImageSink, ImageSource, PutBlobResult, RawManifest } from "./content.ts";
import { isIndexType } from "./media_types.ts";
import { hostPlatform, selectManifest } from "./platform.ts";
import { type Descriptor, parseManifest, type Platform } from "./schemas.ts";

/** Options for {@link copyImage}. */
export interface CopyOptions {
  /** Source tag or digest; the source's default when absent. */
  ref?: string;
  /** The manifest at `ref`, when the caller already fetched it. */
  manifest?: RawManifest;
  /** Tags to write the top manifest under; by digest only when empty. */
  tags?: string[];
  /** Copy every child of an index. */
  all?: boolean;
  /** Copy only this platform's image out of an index (default: the host's, unless `all`). */
  platform?: Platform;
  /** Blobs in flight at once (default 4). */
  concurrency?: number;
  /** Called when a blob is done: what the sink did with it. */
  onBlob?: (desc: Descriptor, result: PutBlobResult) => void;
  /** Called as a blob's bytes are written: how many so far. */
  onBlobProgress?: (desc: Descriptor, written: number) => void;
  signal?: AbortSignal;
}

/** What a copy did. */
export interface CopyResult {
  /** The manifest written at the top (the index, or the selected image). */
  manifest: RawManifest;
  /** Blobs uploaded, and their total size. */
  blobsCopied: number;
  bytesCopied: number;
  /** Blobs mounted from another repository of the same registry. */
  blobsMounted: number;
  /** Blobs the sink already held. */
  blobsSkipped: number;
}

/** Copies the image or index at `options.ref` of `source` into `sink`. */
export async function copyImage(
  source: ImageSource,
  sink: ImageSink,
  options: CopyOptions = {},
): Promise<CopyResult> {
  const job = new CopyJob(source, sink, options);
  let top = options.manifest ?? await source.getManifest(options.ref);
  if (isIndexType(top.mediaType) && !options.all) {
    const index = parseManifest(top.bytes, top.mediaType, `manifest of ${source.name}`);
    if (index.kind !== "index") throw new KanikoError(`${source.name}: expected an index`);
    const child = selectManifest(index.manifest, options.platform ?? hostPlatform());
    top = await source.getManifest(child.digest);
  }
  await job.manifest(top);
  const tags = options.tags ?? [];
  if (tags.length === 0) {
    await sink.putManifest(top);
    await sink.addToIndex?.({
      mediaType: top.mediaType,
      digest: top.digest,
      size: top.bytes.byteLength,
    });
  }
  for (const tag of tags) await sink.putManifest(top, tag);
  return { manifest: top, ...job.stats };
}

class CopyJob {
  stats = { blobsCopied: 0, bytesCopied: 0, blobsMounted: 0, blobsSkipped: 0 };
  #blobs = new Map<string, Promise<void>>();
  #running = 0;
  #queue: Array<() => void> = [];
  /** Aborted on the first failure, so the other transfers stop instead of running on. */
  #abort = new AbortController();
  #failure: { error: unknown } | undefined;
  readonly signal: AbortSignal;

  constructor(
    readonly source: ImageSource,
    readonly sink: ImageSink,
    readonly options: CopyOptions,
  ) {
    this.signal = options.signal
      ? AbortSignal.any([options.signal, this.#abort.signal])
      : this.#abort.signal;
  }

  /**
   * Waits for every task; on the first failure aborts the others, lets them settle, and
   * rethrows that first failure.
   */
  async #all(tasks: Promise<void>[]): Promise<void> {
    const guarded = tasks.map((t) =>
      t.catch((error) => {
        this.#failure ??= { error };
        this.#abort.abort(error);
        throw error;
      })
    );
    await Promise.allSettled(guarded);
    if (this.#failure) throw this.#failure.error;
  }

  /** Copies what `raw` refers to (children, blobs); the caller writes `raw` itself. */
  async manifest(raw: RawManifest): Promise<void> {
    const parsed = parseManifest(
      raw.bytes,
      raw.mediaType,
      `manifest ${raw.digest} of ${this.source.name}`,
    );
    if (parsed.kind === "index") {
      await this.#all(parsed.manifest.manifests.map((d) => this.#child(d)));
      return;
    }
    const m = parsed.manifest;
    const blobs = [m.config, ...m.layers].filter((d) => !isForeign(d));
    await this.#all(blobs.map((d) => this.#blob(d)));
  }

  async #child(desc: Descriptor): Promise<void> {
    if (await this.sink.hasManifest(desc)) return;
    this.signal.throwIfAborted();
    const raw = await this.source.getManifest(desc.digest);
    await this.manifest(raw);
    await this.sink.putManifest(raw);
  }

  #blob(desc: Descriptor): Promise<void> {
    let p = this.#blobs.get(desc.digest);
    if (!p) {
      p = this.#limited(async () => {
        this.signal.throwIfAborted();
        const onBlobProgress = this.options.onBlobProgress;
        const result = await this.sink.putBlob(desc, this.source, {
          signal: this.signal,
          onProgress: onBlobProgress && ((n) => onBlobProgress(desc, n)),
        });
        if (result === "exists") this.stats.blobsSkipped++;
        else if (result === "mounted") this.stats.blobsMounted++;
        else {
          this.stats.blobsCopied++;
          this.stats.bytesCopied += desc.size;
        }
        this.options.onBlob?.(desc, result);
      });
      this.#blobs.set(desc.digest, p);
    }
    return p;
  }

  async #limited<T>(fn: () => Promise<T>): Promise<T> {
    const limit = Math.max(1, this.options.concurrency ?? 4);
    // A finishing task hands its slot to the first waiter directly, so a newcomer arriving before
    // the waiter resumes cannot take the slot too.
    if (this.#running >= limit) await new Promise<void>((r) => this.#queue.push(r));
    else this.#running++;
    try {
      return await fn();
    } finally {
      const next = this.#queue.shift();
      if (next) next();
      else this.#running--;
    }
  }
}

/** Foreign (Windows base) and non-distributable layers are referenced by URL, never copied. */
function isForeign(desc: Descriptor): boolean {
  const t = desc.mediaType;
  return (t.includes("foreign") || t.includes("nondistributable")) && (desc.urls?.length ?? 0) > 0;
}
