/**
 * The build benchmark's base image: a debootstrap Debian bookworm `minbase` root, made once and
 * cached under `<state>/bench/debian/`, turned into a one-layer OCI image and pushed to the test
 * bed's plain registry as `bench/debian:bookworm` with our own `cli.ts copy`.
 *
 * - Mirror: the first `apt-get indextargets` Packages target whose suite has no `-`
 *   (`bookworm`, not `bookworm-updates`): the machine's configured Debian mirror.
 * - debootstrap: `/usr/sbin/debootstrap` when installed, else the `.deb` fetched with
 *   `apt-get download` and unpacked under `<state>/bench/debootstrap/` (run with
 *   `DEBOOTSTRAP_DIR`): nothing is installed on the machine.
 * - Trimmed as official images are: apt lists, apt caches and debootstrap's log removed,
 *   `/etc/resolv.conf` emptied (a builder supplies its own), `/etc/hostname` removed.
 * - Layer: GNU tar of the root in byte order of the names (`--numeric-owner`, real modes, owners
 *   and mtimes, no `./` prefix), hashed for the diff_id and gzipped (level 6) in one stream.
 * @module
 */
import { Duplex } from "node:stream";
import { createGzip } from "node:zlib";
import { join } from "node:path";
import { canonicalJson } from "../../lib/oci/canonical_json.ts";
import { digestOf, HashingStream } from "../../lib/oci/digest.ts";
import { OciLayout } from "../../lib/oci/layout.ts";
import { OCI } from "../../lib/oci/media_types.ts";
import { run } from "../testbed/proc.ts";

/** Bump when the way the image is made changes: the cache is rebuilt. */
const VERSION = 1;
/** Tag of the image in the cached layout and in the registry. */
export const DEBIAN_TAG = "bookworm";
/** Repository of the base image on the plain registry. */
export const DEBIAN_REPO = "bench/debian";

/** The cached base image. */
export interface DebianImage {
  version: number;
  mirror: string;
  /** The trimmed root (kept for rebuilding the layout without a new debootstrap). */
  rootfs: string;
  layout: string;
  digest: string;
  layerDigest: string;
  layerSize: number;
  diffId: string;
  files: number;
  rootfsBytes: number;
}

/** The configured Debian mirror and suite, e.g. `http://deb.debian.org/debian/`, `bookworm`. */
export async function debianMirror(): Promise<{ mirror: string; suite: string }> {
  const r = await run("apt-get", [
    "indextargets",
    "--format",
    "$(REPO_URI) $(RELEASE)",
    "Identifier: Packages",
  ]);
  for (const line of r.stdout.split("\n")) {
    const [mirror, suite] = line.trim().split(/\s+/);
    if (mirror && suite && !suite.includes("-")) return { mirror, suite };
  }
  throw new Error("apt-get indextargets names no Debian mirror (run apt-get update first?)");
}

/** argv prefix and env to run debootstrap (installed, or unpacked from its .deb). */
async function debootstrap(
  dir: string,
  log: (s: string) => void,
): Promise<{ cmd: string; env: Record<string, string> }> {
  if (await exists("/usr/sbin/debootstrap")) return { cmd: "/usr/sbin/debootstrap", env: {} };
  const root = join(dir, "debootstrap");
  const cmd = join(root, "usr", "sbin", "debootstrap");
  if (!(await exists(cmd))) {
    log("debootstrap is not installed: fetching its .deb (apt-get download) ...");
    const tmp = join(dir, "debootstrap.tmp");
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    await Deno.mkdir(tmp, { recursive: true });
    await run("apt-get", ["download", "debootstrap"], { cwd: tmp });
    const deb = [...Deno.readDirSync(tmp)].find((e) => e.name.endsWith(".deb"));
    if (!deb) throw new Error("apt-get download debootstrap fetched no .deb");
    await Deno.remove(root, { recursive: true }).catch(() => {});
    await run("dpkg-deb", ["-x", join(tmp, deb.name), root]);
    await Deno.remove(tmp, { recursive: true });
  }
  return { cmd, env: { DEBOOTSTRAP_DIR: join(root, "usr", "share", "debootstrap") } };
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

/** Runs debootstrap into `<dir>/rootfs` (once) and trims it. */
async function ensureRootfs(dir: string, log: (s: string) => void): Promise<string> {
  const rootfs = join(dir, "rootfs");
  const done = join(dir, "rootfs.done");
  if (await exists(done)) return (await Deno.readTextFile(done)).trim();
  const { mirror, suite } = await debianMirror();
  const tool = await debootstrap(dir, log);
  const tmp = join(dir, "rootfs.tmp");
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  await Deno.remove(rootfs, { recursive: true }).catch(() => {});
  log(`debootstrap --variant=minbase ${suite} from ${mirror} (about 30 s) ...`);
  const t0 = performance.now();
  // Through dash explicitly: the script's `#!/bin/sh` may be another shell (busybox sh here).
  const shell = await exists("/usr/bin/dash") ? "/usr/bin/dash" : "sh";
  await run(shell, [tool.cmd, "--variant=minbase", suite, tmp, mirror], {
    env: { ...tool.env, DEBIAN_FRONTEND: "noninteractive" },
  });
  log(`debootstrap done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  // Trim as official images do.
  await run("sh", [
    "-c",
    `cd "$1" && rm -rf var/lib/apt/lists/* var/cache/apt/*.bin var/cache/apt/archives/*.deb \
       var/log/bootstrap.log debootstrap etc/hostname && : > etc/resolv.conf`,
    "sh",
    tmp,
  ]);
  await Deno.rename(tmp, rootfs);
  await Deno.writeTextFile(done, `${mirror}\n`);
  return mirror;
}

function gzip6(stream: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const gz = Duplex.toWeb(createGzip({ level: 6 })) as unknown as ReadableWritablePair<
    Uint8Array,
    Uint8Array
  >;
  return stream.pipeThrough(gz);
}

/**
 * The base image, made when the cache (`<benchDir>/debian/image.json` and its layout) is missing
 * or stale; `log` reports progress.
 */
export async function ensureDebianImage(
  benchDir: string,
  log: (s: string) => void,
): Promise<DebianImage> {
  const dir = join(benchDir, "debian");
  const infoPath = join(dir, "image.json");
  const layoutDir = join(dir, "layout");
  try {
    const info = JSON.parse(await Deno.readTextFile(infoPath)) as DebianImage;
    const layout = await OciLayout.open(layoutDir);
    const ok = info.version === VERSION &&
      await layout.hasBlob({ mediaType: "", digest: info.layerDigest, size: info.layerSize }) &&
      (await layout.tags()).includes(DEBIAN_TAG);
    if (ok) return info;
  } catch {
    // not made yet
  }
  await Deno.mkdir(dir, { recursive: true });
  const mirror = await ensureRootfs(dir, log);
  const rootfs = join(dir, "rootfs");
  log("tar + gzip of the Debian root into an OCI layout ...");
  const t0 = performance.now();
  await Deno.remove(layoutDir, { recursive: true }).catch(() => {});
  const layout = await OciLayout.open(layoutDir, { create: true });
  const tar = new Deno.Command("sh", {
    args: [
      "-c",
      `cd "$1" && find . -mindepth 1 -printf '%P\\0' | LC_ALL=C sort -z |
         tar --null --no-recursion --numeric-owner --format=gnu -cf - -T -`,
      "sh",
      rootfs,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const plain = new HashingStream();
  const layer = await layout.writeBlob(gzip6(tar.stdout.pipeThrough(plain)));
  const status = await tar.status;
  const err = new TextDecoder().decode(await new Response(tar.stderr).arrayBuffer()).trim();
  if (!status.success) throw new Error(`tar of ${rootfs} failed: ${err}`);
  const count = await run("sh", [
    "-c",
    `cd "$1" && find . -mindepth 1 | wc -l && du -sb . | cut -f1`,
    "sh",
    rootfs,
  ]);
  const [files, rootfsBytes] = count.stdout.trim().split("\n").map(Number);
  const created = "2024-01-01T00:00:00Z";
  const config = await layout.writeBlob(canonicalJson({
    architecture: "amd64",
    os: "linux",
    created,
    config: {
      Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
      Cmd: ["bash"],
    },
    rootfs: { type: "layers", diff_ids: [plain.digest()] },
    history: [{
      created,
      created_by: "debootstrap --variant=minbase bookworm (scripts/bench_build/debian.ts)",
    }],
  }));
  const bytes = canonicalJson({
    schemaVersion: 2,
    mediaType: OCI.manifest,
    config: { mediaType: OCI.config, digest: config.digest, size: config.size },
    layers: [{ mediaType: OCI.layerGzip, digest: layer.digest, size: layer.size }],
  });
  const digest = digestOf(bytes);
  await layout.putManifest({ bytes, mediaType: OCI.manifest, digest }, DEBIAN_TAG);
  const info: DebianImage = {
    version: VERSION,
    mirror,
    rootfs,
    layout: layoutDir,
    digest,
    layerDigest: layer.digest,
    layerSize: layer.size,
    diffId: plain.digest(),
    files,
    rootfsBytes,
  };
  await Deno.writeTextFile(infoPath, JSON.stringify(info, null, 2) + "\n");
  log(
    `layout made in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${files} files, ` +
      `${(rootfsBytes / 1e6).toFixed(0)} MB, layer ${(layer.size / 1e6).toFixed(1)} MB gzip`,
  );
  return info;
}
