/**
 * Helpers of the engine tests (`engine_*_test.ts`): real builds through `cli.ts` in chroot
 * isolation against the test-bed registries, and the built image read back with tools that are
 * not ours — `skopeo inspect --raw/--config`, `skopeo copy … oci:DIR:img` and `umoci unpack` —
 * as a flattened tree (path → type, mode, owner, size, sha256, link target, mtime) and the
 * uncompressed layers (their tar member names and bytes, for whiteouts and secret checks).
 *
 * ```ts
 * const e = await engine();
 * await using ctx = await writeContext({ Dockerfile: `FROM ${e.base}\nRUN touch /x\n` });
 * const b = await build(e, ctx.path);
 * const img = await readImage(e, `docker://${b.destination}`);
 * assert.equal(img.tree.get("x")?.type, "file");
 * ```
 * @module
 */
import { join } from "node:path";
import { skopeo, type SkopeoOptions, type TempDir, tempDir, testbed } from "../_testbed.ts";
import type { TestbedEnv, Variant } from "../_testbed.ts";
import { cliRegistryFlags } from "../../scripts/testbed/push.ts";

export type { TempDir, TestbedEnv };
export { tempDir };

const CLI = new URL("../../cli.ts", import.meta.url).pathname;

/** Skip engine tests where builds cannot run (RUN needs root and Linux namespaces). */
export const noEngine = Deno.uid() !== 0 || Deno.build.os !== "linux";

/** The test bed as the engine tests use it. */
export interface Engine {
  env: TestbedEnv;
  /** The plain registry's `HOST:PORT` (most builds push there). */
  host: string;
  /** Multi-arch busybox on the plain registry. */
  base: string;
  /** The amd64-only busybox tag on the plain registry. */
  baseAmd64: string;
  /** CLI flags reaching every test-bed registry (insecure plain hosts, the test CA for TLS). */
  flags: string[];
}

/** The running test bed (started when needed), with the engine tests' view of it. */
export async function engine(): Promise<Engine> {
  const env = await testbed();
  const host = env.registries.plain.host;
  const flags = Object.values(env.registries).flatMap((r) => cliRegistryFlags(r, env.ca));
  return {
    env,
    host,
    base: `${host}/library/busybox:latest`,
    baseAmd64: `${host}/library/busybox:amd64`,
    flags,
  };
}

/** A unique `HOST/engine/NAME-xxxx:latest` on a test-bed registry (plain by default). */
export function destination(e: Engine, name: string, variant: Variant = "plain"): string {
  const host = e.env.registries[variant].host;
  return `${host}/engine/${name}-${crypto.randomUUID().slice(0, 8)}:latest`;
}

/** A context file: text or bytes (optionally with mode, owner, mtime), a symlink or a dir. */
export type FileSpec =
  | string
  | Uint8Array
  | { content: string | Uint8Array; mode?: number; uid?: number; gid?: number; mtime?: number }
  | { symlink: string }
  | { dir: true; mode?: number };

/** Writes files (parents created) into `dir`. */
export async function writeFiles(dir: string, files: Record<string, FileSpec>): Promise<void> {
  for (const [name, spec] of Object.entries(files)) {
    const path = join(dir, name);
    await Deno.mkdir(join(path, ".."), { recursive: true });
    if (typeof spec === "string" || spec instanceof Uint8Array) {
      await writeBytes(path, spec);
    } else if ("symlink" in spec) {
      await Deno.symlink(spec.symlink, path);
    } else if ("dir" in spec) {
      await Deno.mkdir(path, { recursive: true });
      if (spec.mode !== undefined) await Deno.chmod(path, spec.mode);
    } else {
      await writeBytes(path, spec.content);
      if (spec.mode !== undefined) await Deno.chmod(path, spec.mode);
      if (spec.uid !== undefined) await Deno.chown(path, spec.uid, spec.gid ?? spec.uid);
      if (spec.mtime !== undefined) await Deno.utime(path, spec.mtime, spec.mtime);
    }
  }
}

function writeBytes(path: string, data: string | Uint8Array): Promise<void> {
  return typeof data === "string" ? Deno.writeTextFile(path, data) : Deno.writeFile(path, data);
}

/** A temporary build context holding `files` (removed on dispose). */
export async function writeContext(files: Record<string, FileSpec>): Promise<TempDir> {
  const dir = await tempDir("kaniko-engine-ctx-");
  await writeFiles(dir.path, files);
  return dir;
}

/** What a CLI run printed and how it ended. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `deno run -A cli.ts ARGS` (no colour; the test bed's Docker config for credentials). */
export async function kaniko(
  e: Engine,
  args: string[],
  env: Record<string, string> = {},
): Promise<CliResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    env: { NO_COLOR: "1", DOCKER_CONFIG: e.env.dockerConfigDir, ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Options of {@link build}. */
export interface BuildOptions {
  /** Where to push (default: one unique repository on the plain registry); [] for none. */
  destinations?: string[];
  /** More CLI flags. */
  args?: string[];
  /** More environment variables of the CLI process. */
  env?: Record<string, string>;
}

/** A finished build. */
export interface BuildResult extends CliResult {
  /** The first destination (where {@link readImage} reads from). */
  destination: string;
  destinations: string[];
}

/**
 * Builds `context` (its `Dockerfile`) with `--isolation chroot` and a private `--kaniko-dir`
 * (so RUN cache mounts never touch the host's /kaniko), pushing to the destinations.
 */
export async function build(
  e: Engine,
  context: string,
  opts: BuildOptions = {},
): Promise<BuildResult> {
  const destinations = opts.destinations ?? [destination(e, "img")];
  await using kdir = await tempDir("kaniko-engine-dir-");
  const args = [
    "--context",
    context,
    "--isolation",
    "chroot",
    "--kaniko-dir",
    kdir.path,
    ...e.flags,
    ...destinations.flatMap((d) => ["--destination", d]),
    ...(opts.args ?? []),
  ];
  const r = await kaniko(e, args, opts.env);
  return { ...r, destination: destinations[0], destinations };
}

/** Throws with the build's output when it did not succeed. */
export function assertBuilt(r: CliResult): void {
  if (r.code !== 0) throw new Error(`build failed with exit code ${r.code}:\n${r.stderr}`);
}

/** One path of an unpacked image. */
export interface TreeEntry {
  type: "file" | "dir" | "symlink" | "other";
  /** Permission bits incl. setuid/setgid/sticky. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  /** Hex sha256 of a regular file's content. */
  sha256?: string;
  /** A symlink's target. */
  link?: string;
}

/** One layer of an image, uncompressed. */
export interface LayerContent {
  mediaType: string;
  digest: string;
  /** Tar member names as written (`a/b`, `a/.wh.c`, `d/.wh..wh..opq`). */
  names: string[];
  /** The uncompressed tar. */
  tar: Uint8Array;
}

/** An image read back. */
export interface ReadImage {
  /** `sha256:` of the manifest bytes (as the registry serves them for `docker://`). */
  digest: string;
  /** The manifest (as served for `docker://`; else as skopeo wrote it to an OCI layout). */
  manifest: any;
  config: any;
  /** Flattened tree after `umoci unpack`: relative path → entry (the root itself left out). */
  tree: Map<string, TreeEntry>;
  /** The layers, uncompressed, in order. */
  layers: LayerContent[];
  /** Reads a regular file of the tree as text. */
  text(path: string): string | undefined;
}

/** Options of {@link readImage}. */
export interface ReadOptions {
  /** Registry of a `docker://` reference (default plain). */
  variant?: Variant;
  /** Unpack with umoci into {@link ReadImage.tree} (default true). */
  unpack?: boolean;
}

/**
 * Reads an image back with skopeo (`docker://REF`, `oci:DIR:TAG`, `docker-archive:FILE`):
 * its raw manifest, config, layers (uncompressed with gzip/zstd) and, unpacked by umoci, its
 * tree. Files are hashed; texts of files under 64 KiB are kept for {@link ReadImage.text}.
 */
export async function readImage(
  e: Engine,
  ref: string,
  opts: ReadOptions = {},
): Promise<ReadImage> {
  const so: SkopeoOptions = { env: e.env };
  const isDocker = ref.startsWith("docker://");
  await using tmp = await tempDir("kaniko-engine-read-");
  const layout = join(tmp.path, "oci");
  const copied = await skopeo(
    ["copy", ref, `oci:${layout}:img`],
    isDocker ? { ...so, src: opts.variant ?? "plain" } : so,
  );
  if (copied.code !== 0) throw new Error(`skopeo copy ${ref}: ${copied.stderr}`);
  const index = JSON.parse(await Deno.readTextFile(join(layout, "index.json")));
  const copy = JSON.parse(await Deno.readTextFile(blobPath(layout, index.manifests[0].digest)));
  const config = JSON.parse(await Deno.readTextFile(blobPath(layout, copy.config.digest)));
  let digest: string = index.manifests[0].digest;
  let manifest = copy;
  if (isDocker) {
    // The manifest exactly as the registry serves it (skopeo converts Docker types for oci:).
    const raw = await skopeo(["inspect", "--raw", ref], {
      ...so,
      variant: opts.variant ?? "plain",
    });
    if (raw.code !== 0) throw new Error(`skopeo inspect --raw ${ref}: ${raw.stderr}`);
    digest = await sha256(raw.stdout);
    manifest = JSON.parse(raw.stdout);
  }
  const layers: LayerContent[] = [];
  for (const l of copy.layers) layers.push(await layerContent(layout, l));
  const tree = new Map<string, TreeEntry>();
  const texts = new Map<string, string>();
  if (opts.unpack ?? true) {
    let unpackFrom = layout;
    if (copy.layers.some((l: { mediaType: string }) => /zstd/.test(l.mediaType))) {
      // umoci 0.4 cannot read zstd layers: let skopeo recompress them with gzip.
      unpackFrom = join(tmp.path, "gzip");
      const gz = await skopeo(
        ["copy", "--dest-compress", "--dest-compress-format=gzip", ref, `oci:${unpackFrom}:img`],
        isDocker ? { ...so, src: opts.variant ?? "plain" } : so,
      );
      if (gz.code !== 0) throw new Error(`skopeo copy (gzip) ${ref}: ${gz.stderr}`);
    }
    const bundle = join(tmp.path, "bundle");
    const u = await exec("umoci", ["unpack", "--image", `${unpackFrom}:img`, bundle]);
    if (u.code !== 0) throw new Error(`umoci unpack ${ref}: ${u.stderr}`);
    await walkTree(join(bundle, "rootfs"), tree, texts);
  }
  return { digest, manifest, config, tree, layers, text: (p) => texts.get(p) };
}

/** The raw manifest and config JSON of a registry image, as `skopeo inspect` prints them. */
export async function inspect(
  e: Engine,
  ref: string,
  variant: Variant = "plain",
): Promise<{ raw: string; manifest: any; config: any }> {
  const so: SkopeoOptions = { env: e.env, variant };
  const raw = await skopeo(["inspect", "--raw", `docker://${ref}`], so);
  if (raw.code !== 0) throw new Error(`skopeo inspect --raw ${ref}: ${raw.stderr}`);
  const config = await skopeo(["inspect", "--config", "--raw", `docker://${ref}`], so);
  if (config.code !== 0) throw new Error(`skopeo inspect --config ${ref}: ${config.stderr}`);
  return { raw: raw.stdout, manifest: JSON.parse(raw.stdout), config: JSON.parse(config.stdout) };
}

/** Runs `skopeo ARGS` for local transports (`oci:`, `docker-archive:`); never throws. */
export function skopeoRun(e: Engine, args: string[]): Promise<CliResult> {
  return skopeo(args, { env: e.env });
}

/** True when the registry has the tag (skopeo can inspect it). */
export async function tagExists(e: Engine, ref: string, variant: Variant = "plain") {
  const r = await skopeo(["inspect", "--raw", `docker://${ref}`], { env: e.env, variant });
  return r.code === 0;
}

/** The sha256 (`sha256:…`) of bytes. */
export async function sha256(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(bytes)));
  return "sha256:" + Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** True when `needle` (UTF-8) occurs in the bytes. */
export function bytesInclude(haystack: Uint8Array, needle: string): boolean {
  const n = new TextEncoder().encode(needle);
  if (n.length === 0) return true;
  for (let i = haystack.indexOf(n[0]); i >= 0; i = haystack.indexOf(n[0], i + 1)) {
    if (i + n.length > haystack.length) return false;
    let j = 1;
    while (j < n.length && haystack[i + j] === n[j]) j++;
    if (j === n.length) return true;
  }
  return false;
}

function blobPath(layout: string, digest: string): string {
  return join(layout, "blobs", ...digest.split(":"));
}

/** Runs a command to completion; stdin from `input`. */
export async function exec(
  cmd: string,
  args: string[],
  input?: Uint8Array,
): Promise<{ code: number; stdout: Uint8Array; stderr: string }> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: input ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (input) {
    const w = child.stdin.getWriter();
    await w.write(input).catch(() => {});
    await w.close().catch(() => {});
  }
  const out = await child.output();
  return { code: out.code, stdout: out.stdout, stderr: new TextDecoder().decode(out.stderr) };
}

/** Layers already read in this process, by digest (every image shares the base layer). */
const layerCache = new Map<string, Promise<LayerContent>>();

function layerContent(
  layout: string,
  desc: { mediaType: string; digest: string },
): Promise<LayerContent> {
  let p = layerCache.get(desc.digest);
  if (!p) {
    p = (async () => {
      const tar = await uncompress(blobPath(layout, desc.digest), desc.mediaType);
      return { mediaType: desc.mediaType, digest: desc.digest, names: tarNames(tar), tar };
    })();
    layerCache.set(desc.digest, p);
    p.catch(() => layerCache.delete(desc.digest));
  }
  return p;
}

async function uncompress(path: string, mediaType: string): Promise<Uint8Array> {
  if (/zstd/.test(mediaType)) {
    const r = await exec("zstd", ["-dc", path]);
    if (r.code !== 0) throw new Error(`zstd -dc ${path}: ${r.stderr}`);
    return r.stdout;
  }
  const file = await Deno.open(path);
  const stream = /gzip/.test(mediaType)
    ? file.readable.pipeThrough(new DecompressionStream("gzip"))
    : file.readable;
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * The member names of a tar (ustar and PAX `path`, GNU long names), directories with a
 * trailing slash, as `tar -t` lists them.
 */
export function tarNames(tar: Uint8Array): string[] {
  const dec = new TextDecoder();
  const field = (off: number, len: number) => {
    const b = tar.subarray(off, off + len);
    const end = b.indexOf(0);
    return dec.decode(end < 0 ? b : b.subarray(0, end));
  };
  const names: string[] = [];
  let next: string | undefined;
  for (let off = 0; off + 512 <= tar.length;) {
    const h = off;
    if (tar.subarray(h, h + 512).every((b) => b === 0)) break;
    const size = parseInt(field(h + 124, 12).trim() || "0", 8);
    const type = String.fromCharCode(tar[h + 156] || 48);
    const body = tar.subarray(h + 512, h + 512 + size);
    off = h + 512 + Math.ceil(size / 512) * 512;
    if (type === "x") {
      const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(dec.decode(body));
      if (m) next = m[1];
      continue;
    }
    if (type === "L") {
      next = dec.decode(body).replace(/\0+$/, "");
      continue;
    }
    if (type === "g") continue;
    const prefix = field(h + 345, 155);
    const short = field(h, 100);
    let name = next ?? (prefix ? `${prefix}/${short}` : short);
    next = undefined;
    if (type === "5" && !name.endsWith("/")) name += "/";
    names.push(name);
  }
  return names;
}

async function walkTree(
  root: string,
  tree: Map<string, TreeEntry>,
  texts: Map<string, string>,
): Promise<void> {
  const hashes = new Map<string, string>();
  const visit = async (rel: string) => {
    const path = rel ? join(root, rel) : root;
    for await (const ent of Deno.readDir(path)) {
      const name = rel ? `${rel}/${ent.name}` : ent.name;
      const full = join(root, name);
      const st = await Deno.lstat(full);
      const entry: TreeEntry = {
        type: st.isFile ? "file" : st.isDirectory ? "dir" : st.isSymlink ? "symlink" : "other",
        mode: st.mode! & 0o7777,
        uid: st.uid!,
        gid: st.gid!,
        size: st.size,
        mtime: Math.floor((st.mtime?.getTime() ?? 0) / 1000),
      };
      if (st.isSymlink) entry.link = await Deno.readLink(full);
      if (st.isFile) {
        const key = `${st.dev}:${st.ino}`;
        let hash = hashes.get(key);
        if (!hash) {
          const bytes = await Deno.readFile(full);
          hash = (await sha256(bytes)).slice(7);
          hashes.set(key, hash);
          if (bytes.length < 65536) texts.set(name, new TextDecoder().decode(bytes));
        } else if (st.size < 65536) {
          texts.set(name, await Deno.readTextFile(full));
        }
        entry.sha256 = hash;
      }
      tree.set(name, entry);
      if (st.isDirectory) await visit(name);
    }
  };
  await visit("");
}

/** Permission bits as `0o755` text, for messages. */
export function octal(mode: number | undefined): string {
  return mode === undefined ? "undefined" : "0o" + mode.toString(8);
}

/** `/etc/passwd` and `/etc/group` with users and groups the tests use. */
export const USERS = {
  "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n" +
    "alice:x:1500:1600:Alice:/home/alice:/bin/sh\n" +
    "bob:x:1501:1601::/home/bob:/bin/sh\n",
  "etc/group": "root:x:0:\nalicegrp:x:1600:\nbobgrp:x:1601:\n" +
    "extra:x:1700:alice\nmore:x:1800:bob,alice\n",
};
