/**
 * Flattened images for the buildah comparison suite (`scripts/compare_buildah.ts`).
 *
 * {@link flattenImage} copies an image (any skopeo transport: `docker://HOST/REPO:TAG`,
 * `oci:DIR:TAG`…) into a private OCI layout with skopeo, unpacks it with `umoci unpack` (as root,
 * so owners, modes incl. setuid/setgid/sticky, devices and xattrs are real) and walks the rootfs
 * into path → {@link FlatEntry}. Nothing of our own builder is involved in reading the image back
 * except the libc `lstat`/xattr bindings of `lib/fs/meta.ts`.
 *
 * {@link normaliseConfig} keeps the parts of an image config a Dockerfile decides, and
 * {@link compareImages} diffs two flattened images. Every difference between buildah and Docker /
 * BuildKit that is normalised away is listed in ONE place, {@link KNOWN_DIFFERENCES}, with the
 * reason; anything else is reported.
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { type FileType, getXattr, listXattrs, lstatNs } from "../../lib/fs/meta.ts";

/** One path of a flattened root filesystem. Times are never recorded (see KNOWN_DIFFERENCES). */
export interface FlatEntry {
  type: FileType;
  /** Permission bits incl. setuid/setgid/sticky. */
  mode: number;
  uid: number;
  gid: number;
  /** Regular files only (directory sizes depend on the file system). */
  size?: number;
  /** sha256 of the content (regular files). */
  sha256?: string;
  /** Symlink target. */
  target?: string;
  /** Regular files with more than one link: the smallest path of the group. */
  hardlink?: string;
  /** `major:minor` of char and block devices. */
  rdev?: string;
  /** Extended attributes, name → hex value. */
  xattrs?: Record<string, string>;
}

/** Path (relative, no leading `/`; `.` for the root) → entry, in sorted order. */
export type FlatTree = Map<string, FlatEntry>;

/** The parts of an image config a Dockerfile decides (see {@link normaliseConfig}). */
export type NormalConfig = Record<string, unknown>;

/** A flattened image. */
export interface FlatImage {
  tree: FlatTree;
  config: NormalConfig;
  /** The config blob as stored. */
  rawConfig: Record<string, unknown>;
}

/** Result of a command. */
export interface CmdResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command; throws with its stderr tail on failure unless `allowFail`. */
export async function cmd(
  command: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; allowFail?: boolean } = {},
): Promise<CmdResult> {
  const out = await new Deno.Command(command, {
    args,
    cwd: opts.cwd,
    env: opts.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const res = {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
  if (res.code !== 0 && !opts.allowFail) {
    const tail = (res.stderr || res.stdout).trim().split("\n").slice(-8).join("\n  ");
    throw new Error(`${command} ${args.join(" ")} exited ${res.code}:\n  ${tail}`);
  }
  return res;
}

/** Options of {@link flattenImage}. */
export interface FlattenOptions {
  /** A fresh directory for the layout and the bundle (created; left for the caller to remove). */
  work: string;
  /** Extra skopeo flags for the source, e.g. `--src-tls-verify=false`. */
  srcFlags?: string[];
}

/**
 * Copies `source` (a skopeo image reference, e.g. `docker://127.0.0.1:5000/x:1`) into an OCI
 * layout under `opts.work`, unpacks it with umoci and returns its tree and config.
 */
export async function flattenImage(source: string, opts: FlattenOptions): Promise<FlatImage> {
  await Deno.mkdir(opts.work, { recursive: true });
  const layout = join(opts.work, "layout");
  const bundle = join(opts.work, "bundle");
  await cmd("skopeo", ["copy", "-q", ...(opts.srcFlags ?? []), source, `oci:${layout}:img`], {
    env: { XDG_RUNTIME_DIR: opts.work },
  });
  await cmd("umoci", ["unpack", "--image", `${layout}:img`, bundle]);
  // The config as the source holds it: skopeo's conversion of a Docker v2s2 image into an OCI
  // layout rewrites the config and drops the fields OCI lacks (Healthcheck, OnBuild, Shell).
  const inspectFlags = (opts.srcFlags ?? []).map((f) => f.replace(/^--src-/, "--"));
  const rawConfig = JSON.parse(
    (await cmd("skopeo", ["inspect", "--raw", "--config", ...inspectFlags, source], {
      env: { XDG_RUNTIME_DIR: opts.work },
    })).stdout,
  );
  return {
    tree: await walkTree(join(bundle, "rootfs")),
    config: normaliseConfig(rawConfig),
    rawConfig,
  };
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Walks a root directory (not following symlinks) into a {@link FlatTree}. */
export async function walkTree(root: string): Promise<FlatTree> {
  const entries = new Map<string, FlatEntry>();
  const inodes = new Map<bigint, string[]>();
  const visit = async (rel: string) => {
    const abs = rel === "." ? root : join(root, rel);
    const m = lstatNs(abs);
    if (!m) throw new Error(`vanished while walking: ${abs}`);
    const e: FlatEntry = { type: m.type, mode: m.mode, uid: m.uid, gid: m.gid };
    if (m.type === "file") {
      e.size = m.size;
      e.sha256 = createHash("sha256").update(await Deno.readFile(abs)).digest("hex");
      if (m.nlink > 1) {
        const group = inodes.get(m.ino) ?? [];
        group.push(rel);
        inodes.set(m.ino, group);
      }
    } else if (m.type === "symlink") {
      e.target = Deno.readLinkSync(abs);
    } else if (m.type === "char" || m.type === "block") {
      e.rdev = `${m.rdevMajor}:${m.rdevMinor}`;
    }
    const names = listXattrs(abs).sort();
    if (names.length > 0) {
      e.xattrs = {};
      for (const n of names) e.xattrs[n] = hex(getXattr(abs, n) ?? new Uint8Array());
    }
    entries.set(rel, e);
    if (m.type === "dir") {
      const children = [...Deno.readDirSync(abs)].map((d) => d.name).sort();
      for (const name of children) await visit(rel === "." ? name : `${rel}/${name}`);
    }
  };
  await visit(".");
  for (const group of inodes.values()) {
    if (group.length < 2) continue; // the other links are outside the image (impossible) or gone
    const first = [...group].sort()[0];
    for (const p of group) entries.get(p)!.hardlink = first;
  }
  return new Map([...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

const CONFIG_FIELDS = [
  "Env",
  "Cmd",
  "Entrypoint",
  "User",
  "WorkingDir",
  "Labels",
  "ExposedPorts",
  "Volumes",
  "StopSignal",
  "Healthcheck",
  "OnBuild",
  "Shell",
] as const;

/** Null, undefined, "", [] and {} all mean "not set" in an image config. */
function isEmpty(v: unknown): boolean {
  if (v === undefined || v === null || v === "") return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === "object") return Object.keys(v as object).length === 0;
  return false;
}

/**
 * The parts of an image config a Dockerfile decides: `architecture`, `os`, `variant`, `author`
 * (MAINTAINER) and the
 * `config` fields Env, Cmd, Entrypoint, User, WorkingDir, Labels, ExposedPorts, Volumes,
 * StopSignal, Healthcheck, OnBuild, Shell. Unset, null and empty values are dropped (they mean the
 * same to a runtime), as are zero durations and retries of a healthcheck. History, times,
 * rootfs.diff_ids (layering differs: buildah squashes a build into one layer) and the
 * builder-specific fields are not compared.
 */
export function normaliseConfig(raw: Record<string, unknown>): NormalConfig {
  const out: NormalConfig = {};
  for (const k of ["architecture", "os", "variant", "author"]) {
    if (!isEmpty(raw[k])) out[k] = raw[k];
  }
  const c = (raw.config ?? {}) as Record<string, unknown>;
  for (const k of CONFIG_FIELDS) {
    let v = c[k];
    if (k === "Healthcheck" && v && typeof v === "object") {
      v = Object.fromEntries(
        Object.entries(v as Record<string, unknown>).filter(([, x]) => !isEmpty(x) && x !== 0),
      );
    }
    if (!isEmpty(v)) out[k] = v;
  }
  return out;
}

/** One difference between buildah's image and ours. */
export interface Difference {
  /** A tree path, or `config.FIELD`. */
  path: string;
  /** What differs: `missing`, `extra`, or the entry field (`mode`, `uid`…), or `value`. */
  what: string;
  buildah?: unknown;
  ours?: unknown;
}

/** Input of a known-difference rule. */
export interface RuleInput {
  buildah: FlatImage;
  ours: FlatImage;
  /** The Dockerfile's text (a rule may apply only when the Dockerfile does not name a path). */
  dockerfile: string;
}

/** A documented, accepted difference: normalises both images in place and says what it did. */
export interface KnownDifference {
  id: string;
  /** Why this is not a bug in our builder. */
  reason: string;
  /** Applies the rule; returns one line per thing it normalised. */
  apply(input: RuleInput): string[];
}

/**
 * Mount-point stubs buildah's RUN leaves behind: `--isolation chroot` bind-mounts these paths and
 * creates an empty file or directory for each one the image lacks, and commits them.
 */
const BUILDAH_STUBS = ["dev", "proc", "sys", "run", "etc/hostname", "etc/hosts", "etc/resolv.conf"];

/** The absolute `target=` (`dst=`, `destination=`) paths of a Dockerfile's RUN --mount flags. */
function mountTargets(dockerfile: string): string[] {
  const out = new Set<string>();
  for (const m of dockerfile.matchAll(/--mount=(\S+)/g)) {
    for (const field of m[1].split(",")) {
      const [k, v] = field.split("=");
      if (["target", "dst", "destination"].includes(k) && v?.startsWith("/")) {
        out.add(v.replace(/^\/+|\/+$/g, "") || ".");
      }
    }
  }
  return [...out];
}

function parentOf(p: string): string {
  const i = p.lastIndexOf("/");
  return i < 0 ? "." : p.slice(0, i);
}

/** The volume paths (relative, as tree keys) both configs declare. */
function volumesOf(ours: FlatImage, buildah: FlatImage): string[] {
  const o = Object.keys((ours.config.Volumes ?? {}) as Record<string, unknown>);
  const b = Object.keys((buildah.config.Volumes ?? {}) as Record<string, unknown>);
  return o.filter((v) => b.includes(v)).map((v) => v.replace(/^\/+|\/+$/g, "") || ".");
}

function hasChildren(tree: FlatTree, dir: string): boolean {
  for (const p of tree.keys()) if (p.startsWith(`${dir}/`)) return true;
  return false;
}

/** A symlink's target as a tree key (relative to the root, `..` and `.` resolved, no escape). */
function resolveIn(link: string, target: string): string {
  const parts = target.startsWith("/") ? [] : link.split("/").slice(0, -1);
  for (const c of target.split("/")) {
    if (c === "" || c === ".") continue;
    if (c === "..") parts.pop();
    else parts.push(c);
  }
  return parts.join("/") || ".";
}

/**
 * Every difference between buildah and our builder that is not a bug, in one place. Each rule
 * below normalises one buildah quirk where buildah differs from Docker/BuildKit (we follow
 * BuildKit), with the BuildKit source that says so. Not rules, but equally accepted:
 * - times: {@link walkTree} does not record them; mtimes and the config's `created` differ on
 *   every build;
 * - layering and history: buildah commits a build as one layer (no `--layers`) where Docker
 *   commits a layer per step, so only the flattened result is compared;
 * - buildah's own config fields (`Hostname`, `ArgsEscaped`…): only the fields a Dockerfile
 *   decides are compared ({@link normaliseConfig});
 * - what buildah 1.28 cannot build at all, so the corpus avoids it or spells it out: heredocs
 *   (the case's `Dockerfile.buildah` writes what BuildKit builds, see `case.json`), `mknod` in
 *   RUN (refused under chroot isolation; Docker's default device cgroup allows it), and the
 *   supplementary groups of a RUN process (buildah adds the primary gid to them, runc under
 *   BuildKit sets only the user's /etc/group memberships: the `user-groups` case records their
 *   union, which agrees).
 */
export const KNOWN_DIFFERENCES: KnownDifference[] = [
  {
    id: "buildah-mount-stubs",
    reason: "buildah's RUN (chroot isolation) creates empty mount-point stubs for /dev, /proc, " +
      "/sys, /run, /etc/hostname, /etc/hosts and /etc/resolv.conf when the image lacks them and " +
      "commits them; BuildKit removes such stubs after the step (moby/buildkit " +
      "executor/stubs.go, MountStubsCleaner / MountStubsCleanerForSpec: every empty file or " +
      "directory created for /etc/resolv.conf, /etc/hosts or a spec mount destination), and so " +
      "do we. The stubs travel on with COPY --from of a stage's root (`/copy/dev`…). Dropped " +
      "from buildah's tree only when ours lacks the path but has its parent, buildah's entry " +
      "is an empty file or empty directory, and the Dockerfile does not name the stub path.",
    apply({ buildah, ours, dockerfile }) {
      const done: string[] = [];
      for (const [path, b] of [...buildah.tree]) {
        const stub = BUILDAH_STUBS.find((s) => path === s || path.endsWith(`/${s}`));
        if (!stub || ours.tree.has(path) || !ours.tree.has(parentOf(path))) continue;
        // "/run" names the stub path, "/dev/zero" or "/run-long" do not.
        const named = new RegExp(`/${stub.replaceAll(".", "\\.")}(?=$|[\\s"'\\],;&|)])`, "m")
          .test(dockerfile);
        if (named) continue;
        const emptyDir = b.type === "dir" && !hasChildren(buildah.tree, path);
        const emptyFile = b.type === "file" && b.size === 0;
        if (!emptyDir && !emptyFile) continue;
        buildah.tree.delete(path);
        done.push(`dropped buildah's mount stub /${path}`);
      }
      return done;
    },
  },
  {
    id: "buildah-run-mount-stubs",
    reason: "RUN --mount targets: BuildKit removes the mount point it had to create and, " +
      "recursively, the empty parents it created for it (executor/stubs.go; the Dockerfile " +
      "frontend's LLB sets removeMountStubsRecursive), as we do; buildah removes the mount " +
      "point but leaves the parents it created (e.g. /var and /var/cache for a cache mount at " +
      "/var/cache/app), and also removes a mount point that existed before the step when it is " +
      "an empty directory. Accepted for the targets named by the Dockerfile's --mount flags.",
    apply({ buildah, ours, dockerfile }) {
      const done: string[] = [];
      for (const t of mountTargets(dockerfile)) {
        // A mount point that was an empty directory before the step: buildah deleted it.
        const o = ours.tree.get(t);
        if (o?.type === "dir" && !buildah.tree.has(t) && !hasChildren(ours.tree, t)) {
          buildah.tree.set(t, o);
          done.push(`/${t}: an empty directory before the mount, removed by buildah`);
        }
        // Parents created for the mount point and left behind.
        for (let p = parentOf(t); p !== "."; p = parentOf(p)) {
          const b = buildah.tree.get(p);
          if (!b || b.type !== "dir" || ours.tree.has(p) || hasChildren(buildah.tree, p)) break;
          buildah.tree.delete(p);
          done.push(`dropped /${p}, created by buildah for the mount at /${t}`);
        }
      }
      return done;
    },
  },
  {
    id: "buildah-volume-dirs",
    reason: "buildah creates every VOLUME directory in the image (and the parents it lacks), as " +
      "Docker's legacy builder did; BuildKit's VOLUME only records the path in the config " +
      "(dockerfile2llb dispatchVolume). Dropped from buildah's tree when ours lacks it and it " +
      "is an empty directory.",
    apply({ buildah, ours }) {
      const done: string[] = [];
      for (const v of volumesOf(ours, buildah)) {
        // The volume directory, then each parent that holds nothing else.
        for (let p = v; p !== "" && p !== "."; p = p.slice(0, Math.max(0, p.lastIndexOf("/")))) {
          const b = buildah.tree.get(p);
          if (!b || b.type !== "dir" || ours.tree.has(p) || hasChildren(buildah.tree, p)) break;
          buildah.tree.delete(p);
          done.push(`dropped /${p}, created by buildah for VOLUME /${v}`);
        }
      }
      return done;
    },
  },
  {
    id: "buildah-volume-discards-run",
    reason: "buildah throws away what RUN writes below a VOLUME path declared earlier (Docker's " +
      'legacy builder did the same); BuildKit keeps it: "If any build steps change the data ' +
      "within the volume after it has been declared, those changes will be discarded when " +
      'using the legacy builder. When using Buildx, however, the changes are kept" (Dockerfile ' +
      "reference, VOLUME). We keep them. Differences strictly below a volume path of both " +
      "configs are accepted (COPY into a volume is kept by both and matched here too, but a " +
      "rule cannot tell a RUN change from a COPY one afterwards).",
    apply({ buildah, ours }) {
      const done: string[] = [];
      for (const v of volumesOf(ours, buildah)) {
        const below = (p: string) => v === "." ? p !== "." : p.startsWith(`${v}/`);
        const paths = new Set([...buildah.tree.keys(), ...ours.tree.keys()].filter(below));
        for (const p of [...paths].sort()) {
          const b = buildah.tree.get(p);
          const o = ours.tree.get(p);
          if (b && o && same(b, o)) continue;
          if (o) buildah.tree.set(p, o);
          else buildah.tree.delete(p);
          done.push(
            `/${p} below VOLUME /${v}: buildah ${b ? describeEntry(b) : "absent"}, ` +
              `ours ${o ? describeEntry(o) : "absent"}`,
          );
        }
      }
      return done;
    },
  },
  {
    id: "buildah-env-order",
    reason: "ENV of a variable the image already has: BuildKit replaces it in place " +
      "(dockerfile2llb addEnv), buildah removes it and appends it. The same variables with " +
      "the same values in another order are accepted.",
    apply({ buildah, ours }) {
      const b = buildah.config.Env as string[] | undefined;
      const o = ours.config.Env as string[] | undefined;
      if (!b || !o || same(b, o) || !same([...b].sort(), [...o].sort())) return [];
      buildah.config.Env = o;
      return [`Env order: buildah ${JSON.stringify(b)}`];
    },
  },
  {
    id: "buildah-shell-form-ignores-shell",
    reason: "CMD and ENTRYPOINT in shell form: BuildKit wraps the command with the SHELL in " +
      "force (dockerfile2llb withShell: the image's Shell, else /bin/sh -c); buildah always " +
      "uses /bin/sh -c (its RUN does honour SHELL).",
    apply({ buildah, ours }) {
      const shell = ours.config.Shell as string[] | undefined;
      if (!shell || !same(shell, buildah.config.Shell)) return [];
      const done: string[] = [];
      for (const k of ["Cmd", "Entrypoint"]) {
        const b = buildah.config[k] as string[] | undefined;
        const o = ours.config[k] as string[] | undefined;
        if (!b || !o || b.length !== 3 || b[0] !== "/bin/sh" || b[1] !== "-c") continue;
        if (!same(o, [...shell, b[2]])) continue;
        buildah.config[k] = o;
        done.push(`${k}: buildah ${JSON.stringify(b)}`);
      }
      return done;
    },
  },
  {
    id: "buildah-copy-onto-dangling-symlink",
    reason: "COPY of a file to a destination that is a dangling symlink: BuildKit resolves the " +
      "link inside the root (fsutil copy.Copy: fs.RootPath(dstRoot, dst)) and writes the file " +
      "at the link's target, as we do; buildah makes the target a directory and puts the file " +
      "in it. Accepted when ours has a symlink to X and a file X, and buildah has, instead, a " +
      "directory X holding only that same file.",
    apply({ buildah, ours }) {
      const done: string[] = [];
      for (const [link, e] of ours.tree) {
        if (e.type !== "symlink" || !e.target) continue;
        const x = resolveIn(link, e.target);
        const o = ours.tree.get(x);
        const b = buildah.tree.get(x);
        if (!o || o.type !== "file" || !b || b.type !== "dir" || !same(buildah.tree.get(link), e)) {
          continue;
        }
        const children = [...buildah.tree.keys()].filter((p) => p.startsWith(`${x}/`));
        if (children.length !== 1) continue;
        const child = buildah.tree.get(children[0])!;
        const { hardlink: _h, ...inner } = child;
        if (!same(inner, { ...o, hardlink: undefined })) continue;
        buildah.tree.delete(children[0]);
        buildah.tree.set(x, o);
        done.push(`/${x}: buildah made a directory holding /${children[0]}`);
      }
      return done;
    },
  },
  {
    id: "buildah-chown-drops-special-bits",
    reason: "COPY/ADD --chown of a setuid or setgid file or directory: BuildKit chowns, then " +
      "chmods with the source's whole mode (fsutil copy_linux.go copyFileInfo: Chown, then " +
      "os.Chmod(name, fi.Mode())), so setuid/setgid survive, as with us; buildah's result has " +
      "them cleared. Accepted when the Dockerfile uses --chown and the modes differ only by " +
      "buildah lacking setuid/setgid bits ours has.",
    apply({ buildah, ours, dockerfile }) {
      if (!/--chown[= ]/.test(dockerfile)) return [];
      const done: string[] = [];
      for (const [p, o] of ours.tree) {
        const b = buildah.tree.get(p);
        if (!b || b.mode === o.mode || (o.mode & 0o6000) === 0) continue;
        if (b.mode !== (o.mode & ~0o6000)) continue;
        b.mode = o.mode;
        done.push(`/${p}: buildah mode ${b.mode.toString(8)} without setuid/setgid`);
      }
      return done;
    },
  },
  {
    id: "buildah-add-chown-archive",
    reason: "ADD --chown of a local archive: BuildKit extracts it with the --chown owner for " +
      "every entry (solver/llbsolver/file/unpack.go: TarOptions.ChownOpts from the chown " +
      "user), as we do; buildah keeps the owners recorded in the archive. Accepted below the " +
      "destination of an `ADD --chown=UID:GID` (numeric) line when the owner is the only " +
      "difference and ours is UID:GID.",
    apply({ buildah, ours, dockerfile }) {
      const done: string[] = [];
      for (
        const m of dockerfile.matchAll(/^ADD\s+(?:--\S+\s+)*?--chown=(\d+):(\d+)\s.*\s(\S+)$/gm)
      ) {
        const [uid, gid] = [Number(m[1]), Number(m[2])];
        const dest = m[3].replace(/^\/+|\/+$/g, "");
        for (const [p, o] of ours.tree) {
          const b = buildah.tree.get(p);
          if (!p.startsWith(`${dest}/`) || !b || o.uid !== uid || o.gid !== gid) continue;
          if (b.uid === uid && b.gid === gid) continue;
          if (!same({ ...b, uid, gid }, o)) continue;
          done.push(`/${p}: buildah kept the archive's owner ${b.uid}:${b.gid}`);
          b.uid = uid;
          b.gid = gid;
        }
      }
      return done;
    },
  },
  {
    id: "buildah-expose-ranges",
    reason: "EXPOSE of a port range: BuildKit records each port of the range " +
      "(dockerfile2llb/convert_expose.go parsePortSpec), as we do; buildah records the range " +
      'itself as one key ("7000-7002/udp"). buildah\'s range keys are expanded.',
    apply({ buildah }) {
      const ports = buildah.config.ExposedPorts as Record<string, unknown> | undefined;
      if (!ports) return [];
      const done: string[] = [];
      for (const key of Object.keys(ports)) {
        const m = /^(\d+)-(\d+)(\/\w+)?$/.exec(key);
        if (!m) continue;
        delete ports[key];
        for (let n = Number(m[1]); n <= Number(m[2]); n++) ports[`${n}${m[3] ?? "/tcp"}`] = {};
        done.push(`ExposedPorts: expanded buildah's ${key}`);
      }
      return done;
    },
  },
  {
    id: "buildah-version-label",
    reason: "buildah labels every image it builds with io.buildah.version; Docker does not.",
    apply({ buildah }) {
      const labels = buildah.config.Labels as Record<string, string> | undefined;
      if (!labels || !("io.buildah.version" in labels)) return [];
      delete labels["io.buildah.version"];
      if (Object.keys(labels).length === 0) delete buildah.config.Labels;
      return ["dropped buildah's label io.buildah.version"];
    },
  },
];

/** JSON with object keys sorted (so key order never matters). */
function canonical(v: unknown): string {
  return JSON.stringify(
    v,
    (_k, x) =>
      x && typeof x === "object" && !Array.isArray(x)
        ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
        : x,
  );
}

function same(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b);
}

/** The result of {@link compareImages}. */
export interface Comparison {
  /** Unexplained differences (each one is a bug until classified). */
  differences: Difference[];
  /** What the {@link KNOWN_DIFFERENCES} rules normalised, `rule-id: detail`. */
  explained: string[];
}

/**
 * Applies {@link KNOWN_DIFFERENCES} (mutating both images) and diffs trees and configs.
 * `extraRules` are case-specific accepted differences (documented where they are defined).
 */
export function compareImages(
  input: RuleInput,
  extraRules: KnownDifference[] = [],
): Comparison {
  const explained: string[] = [];
  for (const rule of [...KNOWN_DIFFERENCES, ...extraRules]) {
    for (const line of rule.apply(input)) explained.push(`${rule.id}: ${line}`);
  }
  const { buildah, ours } = input;
  const differences: Difference[] = [];
  const paths = [...new Set([...buildah.tree.keys(), ...ours.tree.keys()])].sort();
  for (const p of paths) {
    const b = buildah.tree.get(p);
    const o = ours.tree.get(p);
    if (!o) {
      differences.push({ path: p, what: "missing", buildah: describeEntry(b!) });
      continue;
    }
    if (!b) {
      differences.push({ path: p, what: "extra", ours: describeEntry(o) });
      continue;
    }
    const keys = [...new Set([...Object.keys(b), ...Object.keys(o)])] as (keyof FlatEntry)[];
    for (const k of keys) {
      if (!same(b[k], o[k])) {
        differences.push({
          path: p,
          what: k,
          buildah: showField(k, b[k]),
          ours: showField(k, o[k]),
        });
      }
    }
  }
  const keys = [...new Set([...Object.keys(buildah.config), ...Object.keys(ours.config)])].sort();
  for (const k of keys) {
    if (!same(buildah.config[k], ours.config[k])) {
      differences.push({
        path: `config.${k}`,
        what: "value",
        buildah: buildah.config[k],
        ours: ours.config[k],
      });
    }
  }
  return { differences, explained };
}

function showField(k: keyof FlatEntry, v: unknown): unknown {
  return k === "mode" && typeof v === "number" ? v.toString(8).padStart(4, "0") : v;
}

/** `type mode uid:gid size/target/rdev` of an entry, for messages. */
export function describeEntry(e: FlatEntry): string {
  let s = `${e.type} ${e.mode.toString(8).padStart(4, "0")} ${e.uid}:${e.gid}`;
  if (e.type === "file") s += ` size=${e.size} sha256=${e.sha256!.slice(0, 12)}`;
  if (e.hardlink) s += ` hardlink-group=${e.hardlink}`;
  if (e.target !== undefined) s += ` -> ${e.target}`;
  if (e.rdev) s += ` rdev=${e.rdev}`;
  if (e.xattrs) s += ` xattrs=${Object.keys(e.xattrs).join(",")}`;
  return s;
}

/** A readable line for a difference. */
export function formatDifference(d: Difference): string {
  // Config values always as JSON (a string "1" is not a number 1); tree fields as they read.
  const show = (v: unknown) =>
    typeof v === "string" && d.what !== "value" ? v : v === undefined ? "unset" : canonical(v);
  if (d.what === "missing") return `- ${d.path}: only in buildah's image: ${show(d.buildah)}`;
  if (d.what === "extra") return `+ ${d.path}: only in ours: ${show(d.ours)}`;
  const field = d.what === "value" ? "" : ` ${d.what}`;
  return `~ ${d.path}${field}: buildah ${show(d.buildah)}, ours ${show(d.ours)}`;
}
