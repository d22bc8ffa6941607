/**
 * Helpers for the COPY/ADD tests: building small trees from a description, listing a tree as
 * `path → "type mode uid:gid detail"` lines, and a fresh context + stage root per test.
 * @module
 */
import { type BuildContext, prepareContext } from "../../lib/context/mod.ts";
import { lstatNs } from "../../lib/fs/meta.ts";
import { type CopySpec, copyStep } from "../../lib/build/copy.ts";

/** One entry of a tree description. */
export type Node =
  | string
  | { content: string; mode?: number; mtime?: string; uid?: number; gid?: number }
  | { dir: true; mode?: number; mtime?: string; uid?: number; gid?: number }
  | { symlink: string }
  | { hardlink: string };

/** Creates `nodes` under `dir` (parents first: list directories before their contents). */
export function makeTree(dir: string, nodes: Record<string, Node>): void {
  for (const [name, node] of Object.entries(nodes)) {
    const path = `${dir}/${name}`;
    const parent = path.slice(0, path.lastIndexOf("/"));
    Deno.mkdirSync(parent, { recursive: true });
    if (typeof node === "string") {
      Deno.writeTextFileSync(path, node);
      Deno.chmodSync(path, 0o644);
    } else if ("symlink" in node) {
      Deno.symlinkSync(node.symlink, path);
    } else if ("hardlink" in node) {
      Deno.linkSync(`${dir}/${node.hardlink}`, path);
    } else {
      if ("dir" in node) Deno.mkdirSync(path, { recursive: true });
      else Deno.writeTextFileSync(path, node.content);
      Deno.chmodSync(path, node.mode ?? ("dir" in node ? 0o755 : 0o644));
      if (node.uid !== undefined) Deno.chownSync(path, node.uid, node.gid ?? node.uid);
    }
  }
  // Times last (children change their directory's mtime).
  for (const [name, node] of Object.entries(nodes).reverse()) {
    if (typeof node === "object" && "mtime" in node && node.mtime) {
      const t = new Date(node.mtime);
      Deno.utimeSync(`${dir}/${name}`, t, t);
    }
  }
}

/** Describes every entry below `root`: `type mode uid:gid` and content or link target. */
export function listTree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    const names = [...Deno.readDirSync(rel === "" ? root : `${root}/${rel}`)].map((e) => e.name)
      .sort();
    for (const name of names) {
      const path = rel === "" ? name : `${rel}/${name}`;
      out[path] = describe(`${root}/${path}`);
      if (lstatNs(`${root}/${path}`)?.type === "dir") walk(path);
    }
  };
  walk("");
  return out;
}

/** `type mode uid:gid [content|-> target]` of one path. */
export function describe(path: string): string {
  const m = lstatNs(path);
  if (!m) return "missing";
  const head = `${m.type} ${m.mode.toString(8).padStart(4, "0")} ${m.uid}:${m.gid}`;
  if (m.type === "symlink") return `${head} -> ${Deno.readLinkSync(path)}`;
  if (m.type === "file") return `${head} ${JSON.stringify(Deno.readTextFileSync(path))}`;
  return head;
}

/** A scratch area: a context directory, a stage root, and a way to run COPY/ADD into it. */
export interface Bed {
  base: string;
  ctxDir: string;
  root: string;
  context(): Promise<BuildContext>;
  copy(patterns: string[], dest: string, extra?: Partial<CopySpec>): Promise<string[]>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** A fresh {@link Bed} with the context holding `ctx` (and `.dockerignore` when given). */
export async function bed(ctx: Record<string, Node> = {}, root: Record<string, Node> = {}) {
  const base = await Deno.realPath(await Deno.makeTempDir({ prefix: "copy-test-" }));
  const ctxDir = `${base}/ctx`;
  const rootDir = `${base}/root`;
  Deno.mkdirSync(ctxDir);
  Deno.mkdirSync(rootDir);
  makeTree(ctxDir, ctx);
  makeTree(rootDir, root);
  let context: BuildContext | undefined;
  const b: Bed = {
    base,
    ctxDir,
    root: rootDir,
    async context() {
      return context ??= await prepareContext(ctxDir);
    },
    async copy(patterns, dest, extra = {}) {
      const r = await copyStep({
        root: rootDir,
        kind: "COPY",
        sources: [{ from: "context", context: await b.context() }],
        patterns,
        dest,
        workdir: "/",
        ...extra,
      });
      return r.touched;
    },
    async [Symbol.asyncDispose]() {
      await context?.cleanup();
      await Deno.remove(base, { recursive: true });
    },
  };
  return b;
}
