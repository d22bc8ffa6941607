/**
 * What a RUN step mounts, planned on the host before the sandbox starts: paths resolved inside
 * the root as the kernel would inside the chroot (symlinks followed with the root as `/`, `..`
 * stopping at the root), mount points created where missing and removed afterwards (BuildKit's
 * mount stubs: never left in a layer), cache directories, secret files, tmpfs sizes.
 *
 * The plan is a list of operations for the sandbox script (`lib/build/isolation.ts`), mounts
 * batched into fstab files. The host never sees any of the mounts: they exist only in the step's
 * private mount namespace.
 *
 * `/dev` (chroot isolation) is a directory private to the step, bind-mounted: it holds the
 * `fd`, `stdin`, `stdout`, `stderr`, `ptmx` and `core` links and empty files on which the host's
 * `null`, `zero`, `full`, `random`, `urandom` and `tty` nodes are bind-mounted (no mknod, so it
 * also works where device creation is denied; never the whole host /dev, whose disks a root
 * command could write), plus a new devpts instance, a 64 MiB `shm` tmpfs and `mqueue`. What a
 * command writes there is discarded with the step.
 * @module
 */
import { createHash } from "node:crypto";
import { posix } from "node:path";
import { KanikoError } from "../errors.ts";
import { addSecret, log } from "../log.ts";
import { atimeNs, lstatNs, setTimesNs } from "../fs/meta.ts";
import type { RunMount } from "../dockerfile/run_flags.ts";
import type { SecretSpec } from "../cli/options.ts";

/** A `RUN --mount` as the executor hands it to {@link runStep}. */
export interface StepMount extends RunMount {
  /**
   * `type=bind`: the host path of the source, resolved by the caller inside the build context or
   * the `from=` stage's root (e.g. with {@link resolveInRoot}), so that no component is a
   * symlink (a final symlink is refused). `type=cache` with `from=`: the host directory that
   * seeds a new cache. Ignored otherwise.
   */
  sourcePath?: string;
}

/** Where a build secret's value comes from (`--secret id=…,src=…|env=…`, or given bytes). */
export type SecretSource = { src: string } | { env: string } | { data: Uint8Array };

/** The sources of `--secret` options, by id. */
export function secretSources(specs: readonly SecretSpec[]): Map<string, SecretSource> {
  const map = new Map<string, SecretSource>();
  for (const spec of specs) {
    if (spec.src !== undefined) map.set(spec.id, { src: spec.src });
    else if (spec.env !== undefined) map.set(spec.id, { env: spec.env });
  }
  return map;
}

/** Reads a secret's value. */
export function readSecret(id: string, source: SecretSource): Uint8Array {
  if ("data" in source) return source.data;
  if ("env" in source) {
    const value = Deno.env.get(source.env);
    if (value === undefined) {
      throw new KanikoError(`secret ${id}: environment variable ${source.env} is not set`);
    }
    return new TextEncoder().encode(value);
  }
  try {
    return Deno.readFileSync(source.src);
  } catch (e) {
    throw new KanikoError(`secret ${id}: cannot read ${source.src}: ${(e as Error).message}`, {
      cause: e,
    });
  }
}

const MAX_LINKS = 255;

/** How a path inside the sandbox is backed, for resolving paths under mount points. */
interface Layer {
  /** Mount point components (empty for the root). */
  parts: string[];
  /**
   * root: the build root; host: a host directory (cache, read-only bind); overlay: a host
   * directory seen through a discarding overlay; fresh: a new tmpfs; file: a file mount;
   * forbidden: /proc and /sys.
   */
  kind: "root" | "host" | "overlay" | "fresh" | "file" | "forbidden";
  /** Host directory for root, host and overlay layers. */
  backing?: string;
  /** Whether mount points may be created in it (through the script). */
  writable: boolean;
  /** Names directly under the mount point that must not be used (/dev's own links). */
  reserved?: Set<string>;
}

/** A path resolved inside the sandbox. */
interface Resolved {
  /** Components from the root, symlinks resolved. */
  parts: string[];
  /** Index of the first component that does not exist, or -1. */
  missingAt: number;
  /** The existing entry's type (when missingAt is -1). */
  type?: "dir" | "file" | "other";
}

function layerFor(layers: readonly Layer[], parts: readonly string[]): Layer {
  let best = layers[0];
  for (const layer of layers) {
    if (layer.parts.length > parts.length || layer.parts.length < best.parts.length) continue;
    if (layer.parts.every((p, i) => parts[i] === p)) best = layer;
  }
  return best;
}

function lstatOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.lstatSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || (e as { code?: string }).code === "ENOTDIR") {
      return null;
    }
    throw e;
  }
}

function show(parts: readonly string[]): string {
  return "/" + parts.join("/");
}

/**
 * Resolves `path` component by component as the kernel would inside the sandbox: symlinks are
 * read from whatever backs the component (the root or a mount), an absolute target restarts at
 * the root, `..` never climbs above it. Components that do not exist are kept as written.
 */
function resolveIn(
  layers: readonly Layer[],
  path: string,
  what: string,
  options: { followLast?: boolean; mount?: boolean } = {},
): Resolved {
  const followLast = options.followLast ?? true;
  const mount = options.mount ?? true;
  const queue = path.split("/");
  const stack: string[] = [];
  let missingAt = -1;
  let type: Resolved["type"] = "dir";
  let links = 0;
  const fail = (why: string) => new KanikoError(`${what}: ${why}`);
  while (queue.length > 0) {
    const part = queue.shift()!;
    if (part === "" || part === ".") continue;
    if (part === "..") {
      stack.pop();
      if (missingAt >= stack.length) missingAt = -1;
      type = "dir";
      continue;
    }
    if (missingAt < 0 && type !== "dir") throw fail(`${show(stack)} is not a directory`);
    stack.push(part);
    if (missingAt >= 0) continue;
    const layer = layerFor(layers, stack);
    if (layer.kind === "forbidden" && mount) {
      throw fail(`cannot mount on or under ${show(layer.parts)}`);
    }
    if (layer.parts.length === stack.length) {
      type = layer.kind === "file" ? "file" : "dir";
      continue;
    }
    if (layer.kind === "file") throw fail(`${show(layer.parts)} is a file mount`);
    if (layer.kind === "fresh" || layer.kind === "forbidden") {
      if (mount && layer.reserved?.has(stack[layer.parts.length])) {
        throw fail(`cannot mount on ${show(stack)}`);
      }
      missingAt = stack.length - 1;
      continue;
    }
    const host = posix.join(layer.backing!, ...stack.slice(layer.parts.length));
    const info = lstatOrNull(host);
    if (info === null) {
      missingAt = stack.length - 1;
      continue;
    }
    const more = queue.some((p) => p !== "" && p !== ".");
    if (info.isSymlink && (more || followLast)) {
      if (++links > MAX_LINKS) throw fail("too many levels of symbolic links");
      const target = Deno.readLinkSync(host);
      stack.pop();
      if (target.startsWith("/")) stack.length = 0;
      queue.unshift(...target.split("/"));
      type = "dir";
      continue;
    }
    type = info.isDirectory ? "dir" : info.isFile ? "file" : "other";
  }
  return { parts: stack, missingAt, type: missingAt >= 0 ? undefined : type };
}

/**
 * The host path of `path` inside `root`, resolved as inside a chroot: symlinks (the last one too
 * unless `followLast` is false) are followed with `root` as `/`, and `..` stops at the root, so
 * the result is always `root` or below it. Missing components are kept as written.
 */
export function resolveInRoot(
  root: string,
  path: string,
  options: { followLast?: boolean } = {},
): string {
  const layers: Layer[] = [{ parts: [], kind: "root", backing: root, writable: true }];
  const r = resolveIn(layers, path, path, { followLast: options.followLast ?? true });
  return posix.join(root, ...r.parts);
}

/** BuildKit's `units.RAMInBytes`: `64m`, `1.5g`, `512KiB`, plain bytes. */
export function parseTmpfsSize(text: string): number {
  const m = /^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(text.trim());
  if (!m) throw new KanikoError(`RUN --mount=type=tmpfs: invalid size '${text}'`);
  const units: Record<string, number> = {
    k: 2 ** 10,
    m: 2 ** 20,
    g: 2 ** 30,
    t: 2 ** 40,
    p: 2 ** 50,
  };
  const n = parseFloat(m[1]) * (m[2] ? units[m[2].toLowerCase()] : 1);
  return Math.floor(n);
}

/**
 * Mount points created in the root for one step, and the times of the directories they were
 * created in. {@link cleanup} removes the ones still empty (BuildKit's mount stub cleaner) and
 * puts the parents' times back, so that a stub leaves no trace in the snapshot.
 */
export class MountStubs {
  readonly #root: string;
  readonly #created: { parts: string[]; dir: boolean }[] = [];
  readonly #ours = new Set<string>();
  readonly #parents = new Map<
    string,
    { parts: string[]; atime: bigint; mtime: bigint; post?: bigint }
  >();

  constructor(root: string) {
    this.#root = root;
  }

  #host(parts: readonly string[]): string {
    return posix.join(this.#root, ...parts);
  }

  /** Creates the missing components of `parts` from index `from` (the last one as `kind`). */
  create(parts: readonly string[], from: number, kind: "dir" | "file"): void {
    for (let i = from; i < parts.length; i++) {
      const sub = parts.slice(0, i + 1);
      const host = this.#host(sub);
      const last = i === parts.length - 1;
      const wantDir = !last || kind === "dir";
      const existing = lstatOrNull(host);
      if (existing) {
        // Created earlier in this plan (another mount point, the working directory).
        if (wantDir && existing.isDirectory) continue;
        if (!wantDir && !existing.isDirectory && !existing.isSymlink) continue;
        throw new KanikoError(`cannot create the mount point ${show(sub)}: it exists`);
      }
      const parent = sub.slice(0, -1);
      const parentKey = parent.join("/");
      if (!this.#ours.has(parentKey) && !this.#parents.has(parentKey)) {
        const p = this.#host(parent);
        const meta = lstatNs(p);
        if (meta) {
          this.#parents.set(parentKey, {
            parts: parent,
            atime: atimeNs(p) ?? meta.mtimeNs,
            mtime: meta.mtimeNs,
          });
        }
      }
      if (wantDir) {
        Deno.mkdirSync(host);
        Deno.chmodSync(host, 0o755);
      } else {
        Deno.openSync(host, { createNew: true, write: true }).close();
        Deno.chmodSync(host, 0o644);
      }
      this.#created.push({ parts: sub, dir: wantDir });
      this.#ours.add(sub.join("/"));
    }
  }

  /** Records the parents' times once every stub exists (before the command runs). */
  seal(): void {
    for (const entry of this.#parents.values()) {
      entry.post = lstatNs(this.#host(entry.parts))?.mtimeNs;
    }
  }

  /** Whether every component of `parts` is a real directory (no symlink) inside the root. */
  #realDirs(parts: readonly string[]): boolean {
    for (let i = 0; i <= parts.length; i++) {
      const info = lstatOrNull(this.#host(parts.slice(0, i)));
      if (!info || !info.isDirectory) return false;
    }
    return true;
  }

  /**
   * Removes the stubs that are still what was created (an empty directory, an empty file),
   * deepest first, checking that no symlink leads out of the root. A parent directory the
   * command did not touch gets its original times back; one it changed keeps its own.
   */
  cleanup(): void {
    const before = new Map<string, { atime: bigint; mtime: bigint }>();
    for (const [key, entry] of this.#parents) {
      if (!this.#realDirs(entry.parts)) continue;
      const p = this.#host(entry.parts);
      const meta = lstatNs(p);
      if (meta) before.set(key, { atime: atimeNs(p) ?? meta.mtimeNs, mtime: meta.mtimeNs });
    }
    for (const stub of [...this.#created].reverse()) {
      if (!this.#realDirs(stub.parts.slice(0, -1))) continue;
      const host = this.#host(stub.parts);
      const info = lstatOrNull(host);
      if (!info) continue;
      try {
        if (stub.dir) {
          if (!info.isDirectory || !Deno.readDirSync(host)[Symbol.iterator]().next().done) continue;
        } else if (!info.isFile || info.size !== 0) {
          continue;
        }
        Deno.removeSync(host);
      } catch (e) {
        log.debug("cannot remove a mount stub", { path: show(stub.parts), error: String(e) });
      }
    }
    for (const [key, entry] of this.#parents) {
      const now = before.get(key);
      if (!now || !this.#realDirs(entry.parts)) continue;
      const untouched = entry.post !== undefined && now.mtime === entry.post;
      try {
        if (untouched) setTimesNs(this.#host(entry.parts), entry.atime, entry.mtime);
        else setTimesNs(this.#host(entry.parts), now.atime, now.mtime);
      } catch (e) {
        log.debug("cannot restore directory times", { path: show(entry.parts), error: String(e) });
      }
    }
  }
}

/** Caches in use in this process: for `sharing=locked` and `sharing=private`. */
const cacheUsers = new Map<string, number>();
const cacheLocks = new Map<string, Promise<void>>();

async function lockCache(key: string): Promise<() => void> {
  const previous = cacheLocks.get(key) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((resolve) => release = resolve);
  const chained = previous.then(() => mine);
  cacheLocks.set(key, chained);
  await previous;
  return () => {
    release();
    if (cacheLocks.get(key) === chained) cacheLocks.delete(key);
  };
}

/** The directory of cache `id` under `cacheDir`, created (and seeded) when new. */
async function cacheDirectory(cacheDir: string, id: string, m: StepMount): Promise<string> {
  const key = createHash("sha256").update(id).digest("hex");
  const dir = posix.join(cacheDir, key);
  if (lstatOrNull(dir)?.isDirectory) return dir;
  Deno.mkdirSync(cacheDir, { recursive: true });
  const tmp = Deno.makeTempDirSync({ dir: cacheDir, prefix: ".new-" });
  try {
    if (m.sourcePath !== undefined) {
      const out = await new Deno.Command("cp", {
        args: ["-a", "--", `${m.sourcePath}/.`, `${tmp}/`],
        stdout: "null",
        stderr: "piped",
      }).output();
      if (!out.success) {
        throw new KanikoError(
          `RUN --mount=type=cache,id=${id}: cannot seed the cache from ${m.from ?? "its source"}: ${
            new TextDecoder().decode(out.stderr).trim()
          }`,
        );
      }
    }
    Deno.chownSync(tmp, m.uid ?? 0, m.gid ?? 0);
    Deno.chmodSync(tmp, m.mode ?? 0o755);
    try {
      Deno.renameSync(tmp, dir);
    } catch (e) {
      if (!lstatOrNull(dir)?.isDirectory) throw e;
    }
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  return dir;
}

/** What {@link planMounts} needs. */
export interface PlanInput {
  /** The build root, canonical. */
  root: string;
  /** chroot isolation: add /proc, /dev, /sys, /etc/resolv.conf, /etc/hosts. */
  system: boolean;
  mounts: readonly StepMount[];
  secrets: ReadonlyMap<string, SecretSource>;
  /** Parent of the `type=cache` directories. */
  cacheDir?: string;
  /** Private scratch directory (0700, outside the root): fstabs, /dev, hosts, overlays. */
  privateDir: string;
  /** Private directory for secret files (a tmpfs when possible). */
  secretDir: () => string;
  /** Working directory of the command, inside the root. */
  workdir: string;
  /** Hostname for /etc/hosts. */
  hostname: string;
}

/** The sandbox operations of one step and what to undo afterwards. */
export interface MountPlan {
  /** Operations for the sandbox script, in order (mounts batched into fstab files). */
  ops: string[];
  /** Variables to add to the command's environment (`type=secret,env=`). */
  env: Record<string, string>;
  /** Resolved working directory, inside the root. */
  workdir: string;
  /** Mount points created in the root; removed by `cleanup`. */
  stubs: MountStubs;
  /** Releases cache locks. */
  release: () => void;
}

/** /dev entries the sandbox makes itself; nothing may be mounted through them. */
const DEV_RESERVED = new Set(["fd", "stdin", "stdout", "stderr", "ptmx", "core", "pts"]);
/** Character devices of a container's /dev (runc's defaults), bound from the host's. */
const DEV_NODES = ["null", "zero", "full", "random", "urandom", "tty"];
/** Docker's masked /proc paths and read-only ones (the first two are required). */
const PROC_MASKED = [
  "acpi",
  "asound",
  "kcore",
  "keys",
  "latency_stats",
  "timer_list",
  "timer_stats",
  "sched_debug",
  "scsi",
];
const PROC_READONLY_REQUIRED = ["sys", "sysrq-trigger"];
const PROC_READONLY = ["bus", "fs", "irq"];

function describeMount(m: StepMount): string {
  const fields = [`type=${m.type}`];
  if (m.id !== undefined) fields.push(`id=${m.id}`);
  if (m.target !== undefined) fields.push(`target=${m.target}`);
  return `RUN --mount=${fields.join(",")}`;
}

/** An fstab field: every byte outside a safe set as a `\ooo` octal escape (libmount unmangles). */
export function fstabField(text: string): string {
  let out = "";
  for (const byte of new TextEncoder().encode(text)) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9._\/+@=%-]/.test(c) && byte < 0x80
      ? c
      : `\\${byte.toString(8).padStart(3, "0")}`;
  }
  return out;
}

/** One fstab line. */
function fstabLine(source: string, target: string, type: string, options: string): string {
  return `${fstabField(source)} ${fstabField(target)} ${type} ${options} 0 0`;
}

/** A sandbox step: an fstab line (batched with its neighbours) or a script operation. */
type Op = { line: string; optional?: boolean } | { args: string[] };

/**
 * Plans the mounts of one step: resolves every target inside the sandbox, creates missing mount
 * points in the root (tracked as stubs) or asks the script to create them on a mount, prepares
 * cache directories, secret files and generated files. On failure, whatever it created is
 * undone before the error is thrown.
 */
export async function planMounts(input: PlanInput): Promise<MountPlan> {
  const stubs = new MountStubs(input.root);
  const releases: (() => void)[] = [];
  const release = () => {
    for (const r of releases.splice(0)) r();
  };
  try {
    return await plan(input, stubs, releases, release);
  } catch (e) {
    stubs.cleanup();
    release();
    throw e;
  }
}

interface Pending {
  what: string;
  resolved: Resolved;
  kind: "dir" | "file";
  /** Operations that mount it, run after its mount point exists. */
  ops: Op[];
}

function hostKind(path: string): "dir" | "file" | undefined {
  const info = lstatOrNull(path);
  return info ? (info.isDirectory ? "dir" : "file") : undefined;
}

/** The /dev of the sandbox: a directory with the device files, links and mount points. */
function devTemplate(dir: string): void {
  Deno.mkdirSync(dir);
  Deno.chmodSync(dir, 0o755);
  for (const name of DEV_NODES) {
    if (!lstatOrNull(`/dev/${name}`)) continue;
    Deno.writeFileSync(`${dir}/${name}`, new Uint8Array(), { mode: 0o666 });
  }
  for (const [name, mode] of [["pts", 0o755], ["shm", 0o1777], ["mqueue", 0o1777]] as const) {
    Deno.mkdirSync(`${dir}/${name}`);
    Deno.chmodSync(`${dir}/${name}`, mode);
  }
  const links: [string, string][] = [
    ["fd", "/proc/self/fd"],
    ["stdin", "/proc/self/fd/0"],
    ["stdout", "/proc/self/fd/1"],
    ["stderr", "/proc/self/fd/2"],
    ["ptmx", "pts/ptmx"],
    ["core", "/proc/kcore"],
  ];
  for (const [name, target] of links) Deno.symlinkSync(target, `${dir}/${name}`);
}

async function plan(
  input: PlanInput,
  stubs: MountStubs,
  releases: (() => void)[],
  release: () => void,
): Promise<MountPlan> {
  const root = input.root;
  const layers: Layer[] = [{ parts: [], kind: "root", backing: root, writable: true }];
  const pending: Pending[] = [];
  const env: Record<string, string> = {};
  let counter = 0;
  const privatePath = (name: string) => posix.join(input.privateDir, `${name}-${++counter}`);

  const add = (
    what: string,
    target: string,
    kind: "dir" | "file",
    layer: Omit<Layer, "parts">,
    ops: (dst: string) => Op[],
    rootOnly = false,
  ) => {
    const resolved = resolveIn(layers, target, what);
    if (resolved.parts.length === 0) throw new KanikoError(`${what}: cannot mount on /`);
    if (rootOnly && layerFor(layers, resolved.parts).kind !== "root") {
      throw new KanikoError(`${what}: resolves to ${show(resolved.parts)}, on another mount`);
    }
    if (resolved.missingAt < 0) {
      if (kind === "dir" && resolved.type !== "dir") {
        throw new KanikoError(`${what}: ${show(resolved.parts)} is not a directory`);
      }
      if (kind === "file" && resolved.type === "dir") {
        throw new KanikoError(`${what}: ${show(resolved.parts)} is a directory`);
      }
    }
    pending.push({ what, resolved, kind, ops: ops(posix.join(root, ...resolved.parts)) });
    layers.push({ ...layer, parts: resolved.parts });
  };

  if (input.system) {
    const optional: Op[] = [];
    add("/proc", "/proc", "dir", { kind: "forbidden", writable: false }, (d) => {
      const ops: Op[] = [{ line: fstabLine("proc", d, "proc", "nosuid,nodev,noexec") }];
      for (const name of [...PROC_READONLY_REQUIRED, ...PROC_READONLY]) {
        if (!hostKind(`/proc/${name}`)) continue;
        const line = fstabLine(`${d}/${name}`, `${d}/${name}`, "none", "bind,ro");
        (PROC_READONLY.includes(name) ? optional : ops).push({ line });
      }
      for (const name of PROC_MASKED) {
        const kind = hostKind(`/proc/${name}`);
        if (kind === "dir") {
          optional.push({
            line: fstabLine("tmpfs", `${d}/${name}`, "tmpfs", "ro,nosuid,nodev,noexec,size=4k"),
          });
        } else if (kind === "file") {
          optional.push({ line: fstabLine("/dev/null", `${d}/${name}`, "none", "bind") });
        }
      }
      return ops;
    });
    add("/dev", "/dev", "dir", { kind: "fresh", writable: true, reserved: DEV_RESERVED }, (d) => {
      const template = privatePath("dev");
      devTemplate(template);
      const ops: Op[] = [{ line: fstabLine(template, d, "none", "bind") }];
      for (const name of DEV_NODES) {
        if (lstatOrNull(`${template}/${name}`)) {
          ops.push({ line: fstabLine(`/dev/${name}`, `${d}/${name}`, "none", "bind") });
        }
      }
      ops.push({
        line: fstabLine("shm", `${d}/shm`, "tmpfs", "nosuid,noexec,nodev,mode=1777,size=65536k"),
      });
      optional.push(
        {
          line: fstabLine(
            "devpts",
            `${d}/pts`,
            "devpts",
            "nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5",
          ),
        },
        { line: fstabLine("mqueue", `${d}/mqueue`, "mqueue", "nosuid,noexec,nodev") },
      );
      return ops;
    });
    add("/sys", "/sys", "dir", { kind: "forbidden", writable: false }, (d) => {
      if (hostKind("/sys/firmware") === "dir") {
        optional.push({
          line: fstabLine("tmpfs", `${d}/firmware`, "tmpfs", "ro,nosuid,nodev,noexec,size=4k"),
        });
      }
      return [{ line: fstabLine("sysfs", d, "sysfs", "ro,nosuid,nodev,noexec") }];
    });
    const resolv = privatePath("resolv.conf");
    let hostResolv = "";
    try {
      hostResolv = Deno.readTextFileSync("/etc/resolv.conf");
    } catch {
      // no resolver configuration on the host: an empty file
    }
    Deno.writeTextFileSync(resolv, hostResolv);
    Deno.chmodSync(resolv, 0o644);
    const hosts = privatePath("hosts");
    Deno.writeTextFileSync(
      hosts,
      `127.0.0.1\tlocalhost ${input.hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n`,
    );
    Deno.chmodSync(hosts, 0o644);
    for (const [path, file] of [["/etc/resolv.conf", resolv], ["/etc/hosts", hosts]]) {
      // An image whose file is a symlink into /proc or /dev, or a directory, goes without it.
      try {
        add(
          path,
          path,
          "file",
          { kind: "file", writable: false },
          (d) => [{ line: fstabLine(file, d, "none", "bind") }],
          true,
        );
      } catch (e) {
        log.debug(`${path} not provided to RUN`, { reason: String(e) });
      }
    }
    // Best-effort mounts (masks, devpts, mqueue) after the required ones they sit on.
    const last = pending[pending.length - 1];
    last.ops.push(...optional.map((o) => ({ ...o, optional: true })));
  }

  // BuildKit mounts in target order: a mount inside another one comes after it.
  const targetOf = (m: StepMount) => posix.normalize("/" + (m.target ?? ""));
  const mounts = input.mounts.map((m) => ({ m, t: secretTarget(m) ?? targetOf(m) }))
    .sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : 0));
  for (const { m, t } of mounts) {
    const what = describeMount(m);
    switch (m.type) {
      case "bind": {
        if (!m.target) throw new KanikoError(`${what}: target is required`);
        if (m.sourcePath === undefined) {
          throw new KanikoError(`${what}: the source was not resolved`);
        }
        const info = lstatOrNull(m.sourcePath);
        if (!info) {
          throw new KanikoError(
            `${what}: source ${m.source ?? "/"} does not exist${m.from ? ` in ${m.from}` : ""}`,
          );
        }
        if (info.isSymlink) {
          // mount(8) would follow it on the host: the caller resolves symlinks inside the source.
          throw new KanikoError(`${what}: source ${m.source ?? "/"} was not resolved (a symlink)`);
        }
        const src = m.sourcePath;
        if (info.isDirectory) {
          if (m.readOnly) {
            add(
              what,
              t,
              "dir",
              { kind: "host", backing: src, writable: false },
              (d) => [{ line: fstabLine(src, d, "none", "bind,ro") }],
            );
          } else {
            // Writes to a writable bind are discarded (BuildKit): an overlay on a read-only
            // bind of the source at a plain private path (no mounts under it, no characters
            // overlayfs options cannot hold), or a copy of that bind.
            const lower = privatePath("lower");
            const upper = privatePath("upper");
            Deno.mkdirSync(lower);
            Deno.mkdirSync(upper);
            let work = "";
            if (!/[\s,:\\]/.test(lower + upper)) {
              work = privatePath("work");
              Deno.mkdirSync(work);
            }
            add(
              what,
              t,
              "dir",
              { kind: "overlay", backing: src, writable: true },
              (d) => [
                { line: fstabLine(src, lower, "none", "bind,ro") },
                { args: ["overlay", lower, upper, work, d] },
              ],
            );
          }
        } else if (m.readOnly) {
          add(
            what,
            t,
            "file",
            { kind: "file", writable: false },
            (d) => [{ line: fstabLine(src, d, "none", "bind,ro") }],
          );
        } else {
          const copy = privatePath("file");
          Deno.copyFileSync(src, copy);
          add(
            what,
            t,
            "file",
            { kind: "file", writable: false },
            (d) => [{ line: fstabLine(copy, d, "none", "bind") }],
          );
        }
        break;
      }
      case "cache": {
        if (!m.target) throw new KanikoError(`${what}: target is required`);
        if (!input.cacheDir) throw new KanikoError(`${what}: no cache directory configured`);
        const id = m.id || t;
        const key = `${input.cacheDir}\0${id}`;
        let dir: string;
        const sharing = m.sharing ?? "shared";
        if (sharing === "private" && (cacheUsers.get(key) ?? 0) > 0) {
          dir = privatePath("cache");
          Deno.mkdirSync(dir);
          Deno.chownSync(dir, m.uid ?? 0, m.gid ?? 0);
          Deno.chmodSync(dir, m.mode ?? 0o755);
        } else {
          if (sharing === "locked") releases.push(await lockCache(key));
          dir = await cacheDirectory(input.cacheDir, id, m);
        }
        cacheUsers.set(key, (cacheUsers.get(key) ?? 0) + 1);
        releases.push(() => {
          const n = (cacheUsers.get(key) ?? 1) - 1;
          if (n > 0) cacheUsers.set(key, n);
          else cacheUsers.delete(key);
        });
        const options = m.readOnly ? "bind,ro" : "bind";
        add(
          what,
          t,
          "dir",
          { kind: "host", backing: dir, writable: !m.readOnly },
          (d) => [{ line: fstabLine(dir, d, "none", options) }],
        );
        break;
      }
      case "tmpfs": {
        if (!m.target) throw new KanikoError(`${what}: target is required`);
        const options = ["nosuid", "nodev"];
        if (m.size !== undefined) options.push(`size=${parseTmpfsSize(m.size)}`);
        add(
          what,
          t,
          "dir",
          { kind: "fresh", writable: true },
          (d) => [{ line: fstabLine("tmpfs", d, "tmpfs", options.join(",")) }],
        );
        break;
      }
      case "secret": {
        const id = secretId(m);
        const source = input.secrets.get(id);
        if (!source) {
          if (m.required) {
            throw new KanikoError(`secret ${id}: not found`, {
              hint: `pass it with --secret id=${id},src=FILE (or env=VARIABLE)`,
            });
          }
          log.debug("optional secret not provided; not mounted", { id });
          break;
        }
        const data = readSecret(id, source);
        registerSecret(data);
        if (m.env) env[m.env] = new TextDecoder().decode(data);
        const target = secretTarget(m);
        if (target === undefined) break;
        const file = posix.join(input.secretDir(), `${++counter}`);
        Deno.writeFileSync(file, data, { mode: 0o600, createNew: true });
        Deno.chownSync(file, m.uid ?? 0, m.gid ?? 0);
        Deno.chmodSync(file, m.mode ?? 0o400);
        add(
          `secret ${id}`,
          target,
          "file",
          { kind: "file", writable: false },
          (d) => [{ line: fstabLine(file, d, "none", "bind,ro") }],
        );
        break;
      }
      case "ssh": {
        if (m.required) {
          throw new KanikoError(`${what}: SSH agent forwarding is not supported`, {
            hint: "use a secret mount (--secret) for keys, or clone in the build context",
          });
        }
        log.warn("RUN --mount=type=ssh ignored: no SSH agent is forwarded", {
          id: m.id ?? "default",
        });
        break;
      }
    }
  }

  // The working directory exists before any stub is created (it stays in the layer).
  const wd = resolveIn(layers, input.workdir, `WORKDIR ${input.workdir}`, { mount: false });
  if (wd.missingAt >= 0) {
    const layer = layerFor(layers, wd.parts.slice(0, wd.missingAt + 1));
    if (layer.kind === "forbidden") {
      wd.missingAt = -1; // under /proc or /sys: nothing to create, the chdir will tell
    } else if (layer.kind === "root") {
      for (let i = wd.missingAt; i < wd.parts.length; i++) {
        const p = posix.join(root, ...wd.parts.slice(0, i + 1));
        if (!lstatOrNull(p)) {
          Deno.mkdirSync(p);
          Deno.chmodSync(p, 0o755);
        }
      }
      wd.missingAt = -1;
    }
  } else if (wd.type !== "dir") {
    throw new KanikoError(`WORKDIR ${input.workdir}: ${show(wd.parts)} is not a directory`);
  }

  const ops: Op[] = [];
  for (const p of pending) {
    const r = p.resolved;
    if (r.missingAt >= 0) {
      const owner = ownerLayer(layers, r);
      if (owner.kind === "root") {
        stubs.create(r.parts, r.missingAt, p.kind);
      } else if (!owner.writable) {
        throw new KanikoError(
          `${p.what}: ${
            show(r.parts.slice(0, r.missingAt + 1))
          } does not exist in the read-only mount at ${show(owner.parts)}`,
        );
      } else {
        const host = posix.join(root, ...r.parts);
        if (r.parts.length - 1 > r.missingAt) ops.push({ args: ["mkdir", posix.dirname(host)] });
        ops.push({ args: [p.kind === "dir" ? "mkdir" : "mkfile", host] });
      }
    }
    ops.push(...p.ops);
  }
  if (wd.missingAt >= 0) ops.push({ args: ["mkdir", posix.join(root, ...wd.parts)] });
  stubs.seal();
  return { ops: serialize(ops, privatePath), env, workdir: show(wd.parts), stubs, release };
}

/**
 * Script arguments for `ops`: runs of fstab lines become one `mount FILE` (`mount -a -T FILE`,
 * one process for many mounts); best-effort lines become `mount? FILE`.
 */
function serialize(ops: Op[], privatePath: (name: string) => string): string[] {
  const out: string[] = [];
  let batch: string[] = [];
  let optional = false;
  const flush = () => {
    if (batch.length === 0) return;
    const file = privatePath("fstab");
    Deno.writeTextFileSync(file, batch.join("\n") + "\n");
    out.push(optional ? "mount?" : "mount", file);
    batch = [];
  };
  for (const op of ops) {
    if ("line" in op) {
      if (batch.length > 0 && optional !== (op.optional ?? false)) flush();
      optional = op.optional ?? false;
      batch.push(op.line);
    } else {
      flush();
      out.push(...op.args);
    }
  }
  flush();
  return out;
}

/** The layer a missing mount point is created in: the deepest one mounted before its own. */
function ownerLayer(layers: readonly Layer[], r: Resolved): Layer {
  const index = layers.findIndex((l) => l.parts === r.parts);
  return layerFor(index > 0 ? layers.slice(0, index) : layers, r.parts.slice(0, r.missingAt + 1));
}

/** A secret mount's id (BuildKit: `source`, else `id`, else the target's base name). */
export function secretId(m: RunMount): string {
  if (m.source) return m.source;
  if (m.id) return m.id;
  if (m.target) return posix.basename(m.target);
  throw new KanikoError("RUN --mount=type=secret: one of source, target or id is required");
}

/** Where a secret file is mounted: `target`, else `/run/secrets/<id>` unless only `env=` is set. */
function secretTarget(m: RunMount): string | undefined {
  if (m.type !== "secret") return undefined;
  if (m.target) return posix.normalize("/" + m.target);
  if (m.env) return undefined;
  return `/run/secrets/${posix.basename(secretId(m))}`;
}

/** Registers a secret's text (whole and per line) for log redaction. */
function registerSecret(data: Uint8Array): void {
  const text = new TextDecoder().decode(data);
  if (text.trim()) addSecret(text.trim());
  for (const line of text.split(/\r?\n/)) if (line.trim()) addSecret(line.trim());
}
