/**
 * The index stage of a multi-platform build: one descriptor per platform
 * ({@link childEntry}) becomes an OCI image index or a Docker manifest list
 * ({@link assembleIndex}), which {@link IndexSource} serves together with its children so that
 * one `copyImage(…, { all: true })` pushes the whole tree, children first. {@link isOciRefusal}
 * recognises a registry that refuses OCI media types (`--oci-mode=auto`).
 *
 * ```ts
 * const index = assembleIndex(children.map(childEntry), { format: "oci" });
 * const source = new IndexSource(index, children.map((c) => childSource(c, session)));
 * await copyImage(source, session.repository(dest, "push"), { all: true, tags: ["1.0"] });
 * ```
 * @module
 */
export {
  assembleIndex,
  type AssembleIndexOptions,
  childEntry,
  type IndexEntry,
} from "./assemble.ts";
export { childSource, IndexSource, type IndexSourceOptions } from "./source.ts";
export { isOciRefusal } from "./refusal.ts";
