/**
 * An assembled index and its children as one {@link ImageSource}, so that
 * `copyImage(new IndexSource(index, children), sink, { all: true, tags })` pushes every child
 * (and each blob once) before the index, and the tags last.
 * @module
 */
import type { ChildImage } from "../../drivers/types.ts";
import { KanikoError } from "../errors.ts";
import type { ImageSource, OpenBlobOptions, RawManifest } from "../oci/content.ts";
import { type Descriptor, parseManifest } from "../oci/schemas.ts";
import { parseReference } from "../registry/reference.ts";
import type { RegistrySession } from "../registry/session.ts";

type Origin = { registry: string; repository: string };

/** Options for {@link IndexSource}. */
export interface IndexSourceOptions {
  /** Name for messages (default `the image index`). */
  name?: string;
}

/**
 * Serves an index and, by digest, its children's manifests and blobs. Each child is an
 * {@link ImageSource}: one that knows its own manifest (a built image's `manifest`) and blobs
 * (`configDescriptor` and `layers`) is asked for those only; any other (a registry repository)
 * is asked in order for what no known holder has. A blob goes to the child whose manifest lists
 * it once that manifest was served (a copy always reads a child's manifest before its blobs).
 */
export class IndexSource implements ImageSource {
  readonly name: string;
  readonly index: RawManifest;
  readonly #children: ImageSource[];
  readonly #listed: Set<string>;
  /** Manifest digest → the child serving it. */
  readonly #manifestOwner = new Map<string, ImageSource>();
  /** Blob digest → the children whose manifests list it. */
  readonly #blobOwners = new Map<string, ImageSource[]>();

  constructor(index: RawManifest, children: ImageSource[], options: IndexSourceOptions = {}) {
    this.name = options.name ?? "the image index";
    const parsed = parseManifest(index.bytes, index.mediaType, `${this.name} ${index.digest}`);
    if (parsed.kind !== "index") {
      throw new KanikoError(`${this.name} ${index.digest} is not an index (${index.mediaType})`);
    }
    this.index = index;
    this.#children = [...children];
    this.#listed = new Set(parsed.manifest.manifests.map((d) => d.digest));
    for (const child of this.#children) {
      const own = knownManifest(child);
      if (own) this.#learn(own, child);
    }
  }

  /** The index (no ref, or the index's digest), or a child's manifest by digest. */
  async getManifest(ref?: string): Promise<RawManifest> {
    if (ref === undefined || ref === this.index.digest) return this.index;
    if (!this.#listed.has(ref)) {
      throw new KanikoError(`${this.name} has no manifest ${ref}`, {
        hint: `it lists ${[...this.#listed].join(", ")}`,
      });
    }
    const known = this.#manifestOwner.get(ref);
    const { value: raw, source } = known
      ? { value: await known.getManifest(ref), source: known }
      : await this.#firstAnswer(this.#generic(), (c) => c.getManifest(ref), `manifest ${ref}`);
    if (raw.digest !== ref) {
      throw new KanikoError(`${this.name}: ${source.name} served ${raw.digest} for ${ref}`);
    }
    this.#learn(raw, source);
    return raw;
  }

  /** Opens a blob from the child holding it (known holders first, then the others in order). */
  async openBlob(
    desc: Descriptor,
    options?: OpenBlobOptions,
  ): Promise<ReadableStream<Uint8Array>> {
    const owners = this.#blobOwners.get(desc.digest) ?? [];
    const candidates = [...owners, ...this.#generic().filter((c) => !owners.includes(c))];
    const open = (c: ImageSource) => c.openBlob(desc, options);
    return (await this.#firstAnswer(candidates, open, `blob ${desc.digest}`)).value;
  }

  /** Where a blob lives (for cross-repository mounts): its holder's origin. */
  originOf(desc: Descriptor): Origin | undefined {
    for (const owner of this.#blobOwners.get(desc.digest) ?? []) {
      const origin = owner.originOf?.(desc) ?? owner.origin;
      if (origin) return origin;
    }
    return undefined;
  }

  /** Children that do not say which manifest they serve (registry repositories). */
  #generic(): ImageSource[] {
    return this.#children.filter((c) => knownManifest(c) === undefined);
  }

  /** Records the child serving `raw` and, for an image manifest, the blobs it lists. */
  #learn(raw: RawManifest, owner: ImageSource): void {
    this.#manifestOwner.set(raw.digest, owner);
    const parsed = parseManifest(
      raw.bytes,
      raw.mediaType,
      `manifest ${raw.digest} of ${owner.name}`,
    );
    if (parsed.kind !== "image") return;
    for (const d of [parsed.manifest.config, ...parsed.manifest.layers]) {
      const owners = this.#blobOwners.get(d.digest) ?? [];
      if (!owners.includes(owner)) owners.push(owner);
      this.#blobOwners.set(d.digest, owners);
    }
  }

  /** The first of `sources` whose `fn` succeeds, with that source; else the first error. */
  async #firstAnswer<T>(
    sources: ImageSource[],
    fn: (s: ImageSource) => Promise<T>,
    what: string,
  ): Promise<{ value: T; source: ImageSource }> {
    let first: { error: unknown } | undefined;
    for (const source of sources) {
      try {
        return { value: await fn(source), source };
      } catch (error) {
        first ??= { error };
      }
    }
    if (first) throw first.error;
    throw new KanikoError(`${this.name}: no child image holds ${what}`);
  }
}

/** The manifest a child serves, when it says so (a built image's `manifest`). */
function knownManifest(child: ImageSource): RawManifest | undefined {
  const m = (child as { manifest?: Partial<RawManifest> }).manifest;
  if (m && m.bytes instanceof Uint8Array && typeof m.digest === "string" && m.mediaType) {
    return m as RawManifest;
  }
  return undefined;
}

/**
 * The {@link ImageSource} of a driver's child: the built image itself, or the registry
 * repository a remote child was pushed to (read with `session`).
 */
export function childSource(child: ChildImage, session: RegistrySession): ImageSource {
  if (child.kind === "local") return child.image;
  return session.repository(parseReference(`${child.repository}@${child.digest}`), "pull");
}
