/**
 * Offline, reproducible multi-arch busybox base images for the test bed.
 *
 * Inputs: `busybox-static` .debs for six Debian arches, fetched once with `apt-get download`
 * through a private apt state (lists and cache in the state dir; the machine's dpkg arch list is
 * never touched) and cached in `<state>/debs`.
 *
 * Each image is one gzip layer (our lib/tar writer, then gzip -9 via node:zlib; entries sorted, no
 * `./` prefix, mtime 0, uid/gid 0, no user/group names):
 *   bin/ (0755), bin/busybox (0755), bin/<applet> → /bin/busybox for every applet of
 *   `busybox --list` (269 in 1.35), etc/ with passwd and group (root 0 and nobody 65534),
 *   root/ (0700), tmp/ (1777).
 * Config: architecture/os/variant, `Cmd ["sh"]`, `Env PATH=…`, rootfs.diff_ids, one history
 * entry, `created` 1970-01-01T00:00:00Z. The OCI layout at `<state>/oci` holds:
 *   `latest`: OCI index of the six OCI manifests (platforms arm64/v8, arm/v7, …),
 *   `amd64 arm64 armv7 386 ppc64le s390x`: the OCI manifests,
 *   `docker`: a Docker manifest list of Docker v2s2 manifests (same config and layer blobs,
 *   Docker media types), `<tag>-docker`: those v2s2 manifests.
 * Documents are canonical JSON (lib/oci/canonical_json.ts) and the layout is written with
 * lib/oci/layout.ts. A stamp (`<layout>.build.json`) skips the rebuild while the .debs and the
 * code that makes the bytes are unchanged. Same .debs and same code → same bytes → same digests,
 * on any machine.
 * @module
 */
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { createTarStream, type TarWriteEntry } from "../../lib/tar/mod.ts";
import { digestOf } from "../../lib/oci/digest.ts";
import { DOCKER, OCI } from "../../lib/oci/media_types.ts";
import { canonicalJson } from "../../lib/oci/canonical_json.ts";
import { OciLayout } from "../../lib/oci/layout.ts";
import { type Arch, ARCHES, type ArchInfo } from "./env.ts";
import { exists } from "./fs.ts";
import { run } from "./proc.ts";

/**
 * Digest of the code that determines the bytes (this file, lib/tar, canonical JSON), so the
 * build stamp is invalidated when any of it changes.
 */
async function codeDigest(): Promise<string> {
  const files = [
    new URL(import.meta.url),
    new URL("../../lib/oci/canonical_json.ts", import.meta.url),
  ];
  const tarDir = new URL("../../lib/tar/", import.meta.url);
  for (const e of [...Deno.readDirSync(tarDir)].map((e) => e.name).sort()) {
    if (e.endsWith(".ts")) files.push(new URL(e, tarDir));
  }
  const parts: string[] = [];
  for (const f of files) parts.push(digestOf(await Deno.readFile(f)));
  return digestOf(parts.join("\n"));
}

/** Bumped whenever the image recipe changes (invalidates the build stamp). */
const RECIPE_VERSION = "busybox-recipe-2";

const PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const EPOCH = "1970-01-01T00:00:00Z";

const PASSWD =
  "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP = "root:x:0:\nnobody:x:65534:\n";

/** The cached .deb of an arch in `debsDir`, if any (newest name wins when several). */
export function cachedDeb(debsDir: string, debArch: string): string | undefined {
  let names: string[] = [];
  try {
    names = [...Deno.readDirSync(debsDir)]
      .map((e) => e.name)
      .filter((n) => n.startsWith("busybox-static_") && n.endsWith(`_${debArch}.deb`));
  } catch {
    return undefined;
  }
  names.sort();
  return names.length ? join(debsDir, names[names.length - 1]) : undefined;
}

/**
 * Makes sure `debsDir` holds a busybox-static .deb for every arch; downloads the missing ones
 * through a private apt state under `aptDir` (its `apt-get update` may exit 100 because of
 * errors on other suites: tolerated when the download then works). Returns arch → path.
 */
export async function ensureDebs(
  debsDir: string,
  aptDir: string,
  log: (s: string) => void,
): Promise<Map<string, string>> {
  await Deno.mkdir(debsDir, { recursive: true });
  const missing = ARCHES.filter((a) => !cachedDeb(debsDir, a.deb)).map((a) => a.deb);
  if (missing.length) {
    log(`downloading busybox-static for ${missing.join(" ")} (private apt state)`);
    const lists = join(aptDir, "lists");
    const cache = join(aptDir, "cache");
    await Deno.mkdir(join(lists, "partial"), { recursive: true });
    await Deno.mkdir(join(cache, "archives", "partial"), { recursive: true });
    const opts = [
      ...["-o", `Dir::State::Lists=${lists}`, "-o", `Dir::Cache=${cache}`],
      ...["-o", "Debug::NoLocking=1", "-o", "APT::Sandbox::User=root", "-o", "Acquire::Retries=3"],
      ...ARCHES.flatMap((a) => ["-o", `APT::Architectures::=${a.deb}`]),
    ];
    const download = () =>
      run("apt-get", [...opts, "download", ...missing.map((d) => `busybox-static:${d}`)], {
        cwd: debsDir,
        allowFail: true,
      });
    let r = exists(join(lists, "lock")) || hasLists(lists) ? await download() : undefined;
    if (!r || r.code !== 0) {
      const u = await run("apt-get", [...opts, "update"], { allowFail: true });
      if (u.code !== 0) {
        log(`(private apt-get update exited ${u.code}; tolerated if the download works)`);
      }
      r = await download();
    }
    if (r.code !== 0) {
      throw new Error(
        `apt-get download busybox-static failed: ${
          r.stderr.trim().split("\n").slice(-3).join(" | ")
        }`,
      );
    }
  }
  const out = new Map<string, string>();
  for (const a of ARCHES) {
    const deb = cachedDeb(debsDir, a.deb);
    if (!deb) throw new Error(`no busybox-static .deb for ${a.deb} in ${debsDir}`);
    out.set(a.deb, deb);
  }
  return out;
}

function hasLists(lists: string): boolean {
  try {
    return [...Deno.readDirSync(lists)].some((e) => e.name.endsWith("_Packages"));
  } catch {
    return false;
  }
}

/** Per-arch result of a build (what env.json records, minus nothing). */
export type BuiltArch = ArchInfo;

/** Result of {@link buildBusyboxLayout}. */
export interface BuildResult {
  indexDigest: string;
  dockerListDigest: string;
  arches: BuiltArch[];
  /** Layout tags: `latest`, `docker`, per-arch and `<arch>-docker`. */
  tags: string[];
}

/** A blob to store: bytes, media type. */
interface Blob {
  bytes: Uint8Array;
  mediaType: string;
}

/** Canonical JSON bytes (sorted keys, no whitespace): equal content, equal digests. */
const jsonBytes = canonicalJson;

function descriptor(mediaType: string, bytes: Uint8Array, extra: Record<string, unknown> = {}) {
  return { mediaType, digest: digestOf(bytes), size: bytes.length, ...extra };
}

function platformOf(a: Arch): { architecture: string; os: string; variant?: string } {
  return a.variant
    ? { architecture: a.architecture, os: "linux", variant: a.variant }
    : { architecture: a.architecture, os: "linux" };
}

/** The applet names (without `busybox` itself), from the amd64 busybox of the inputs when it can run here. */
async function appletNames(extractedAmd64: string): Promise<string[]> {
  const bin = Deno.build.arch === "x86_64" ? extractedAmd64 : "busybox";
  const r = await run(bin, ["--list"]);
  const names = r.stdout.split("\n").map((s) => s.trim()).filter((s) => s && s !== "busybox");
  if (names.length < 50) throw new Error(`${bin} --list gave only ${names.length} applets`);
  return [...new Set(names)].sort();
}

/** The layer tar (uncompressed) of one arch's rootfs. */
async function layerTar(busybox: Uint8Array, applets: string[]): Promise<Uint8Array> {
  const enc = new TextEncoder();
  const entries: TarWriteEntry[] = [
    { header: { name: "bin/", type: "dir", mode: 0o755 } },
    {
      header: { name: "bin/busybox", type: "file", mode: 0o755, size: busybox.length },
      body: busybox,
    },
    ...applets.map((a): TarWriteEntry => ({
      header: { name: `bin/${a}`, type: "symlink", mode: 0o777, linkname: "/bin/busybox" },
    })),
    { header: { name: "etc/", type: "dir", mode: 0o755 } },
    { header: { name: "etc/group", type: "file", mode: 0o644 }, body: enc.encode(GROUP) },
    { header: { name: "etc/passwd", type: "file", mode: 0o644 }, body: enc.encode(PASSWD) },
    { header: { name: "root/", type: "dir", mode: 0o700 } },
    { header: { name: "tmp/", type: "dir", mode: 0o1777 } },
  ];
  for (const e of entries) {
    e.header = { uid: 0, gid: 0, mtime: 0n, ...e.header };
  }
  entries.sort((
    x,
    y,
  ) => (x.header.name < y.header.name ? -1 : x.header.name > y.header.name ? 1 : 0));
  return new Uint8Array(await new Response(createTarStream(entries)).arrayBuffer());
}

/**
 * Builds the busybox images from the .debs and writes the OCI layout `layoutDir` (replaced
 * atomically). Skips the work when `layoutDir` was built from the same .debs by the same recipe
 * (stamp file), unless `force`.
 */
export async function buildBusyboxLayout(opts: {
  debs: Map<string, string>;
  layoutDir: string;
  workDir: string;
  force?: boolean;
  log?: (s: string) => void;
}): Promise<BuildResult> {
  const log = opts.log ?? (() => {});
  const inputs: Record<string, string> = {};
  for (const a of ARCHES) {
    const deb = opts.debs.get(a.deb)!;
    inputs[a.deb] = digestOf(await Deno.readFile(deb));
  }
  const stampKey = JSON.stringify({ recipe: RECIPE_VERSION, inputs, code: await codeDigest() });
  const stampPath = `${opts.layoutDir}.build.json`;
  if (!opts.force && exists(join(opts.layoutDir, "index.json"))) {
    try {
      const stamp = JSON.parse(await Deno.readTextFile(stampPath));
      if (stamp.key === stampKey) return stamp.result as BuildResult;
    } catch { /* rebuild */ }
  }
  log("building busybox images");
  await Deno.remove(opts.workDir, { recursive: true }).catch(() => {});
  await Deno.mkdir(opts.workDir, { recursive: true });
  const blobs = new Map<string, Blob>();
  const put = (mediaType: string, bytes: Uint8Array) => {
    blobs.set(digestOf(bytes), { bytes, mediaType });
    return bytes;
  };

  // Extract every deb (bin/busybox) and its version.
  const extracted = new Map<string, { busybox: Uint8Array; version: string }>();
  await Promise.all(ARCHES.map(async (a) => {
    const deb = opts.debs.get(a.deb)!;
    const dir = join(opts.workDir, a.deb);
    await run("dpkg-deb", ["-x", deb, dir]);
    const version = (await run("dpkg-deb", ["-f", deb, "Version"])).stdout.trim();
    extracted.set(a.deb, { busybox: await Deno.readFile(join(dir, "bin", "busybox")), version });
  }));
  const applets = await appletNames(join(opts.workDir, "amd64", "bin", "busybox"));

  const built: BuiltArch[] = [];
  const ociEntries: Record<string, unknown>[] = [];
  const dockerEntries: Record<string, unknown>[] = [];
  const refs: { tag: string; desc: { mediaType: string; digest: string } }[] = [];
  for (const a of ARCHES) {
    const { busybox, version } = extracted.get(a.deb)!;
    const tar = await layerTar(busybox, applets);
    const diffId = digestOf(tar);
    const gz = gzipSync(tar, { level: 9 });
    const layer = new Uint8Array(gz.buffer, gz.byteOffset, gz.byteLength);
    put(OCI.layerGzip, layer);
    const platform = platformOf(a);
    const config = put(
      OCI.config,
      jsonBytes({
        architecture: a.architecture,
        config: { Cmd: ["sh"], Env: [PATH_ENV] },
        created: EPOCH,
        history: [{
          created: EPOCH,
          created_by:
            `testbed: busybox-static ${version} (${a.deb}), bin/busybox and applet symlinks`,
        }],
        os: "linux",
        rootfs: { diff_ids: [diffId], type: "layers" },
        ...(a.variant ? { variant: a.variant } : {}),
      }),
    );
    const oci = put(
      OCI.manifest,
      jsonBytes({
        schemaVersion: 2,
        mediaType: OCI.manifest,
        config: descriptor(OCI.config, config),
        layers: [descriptor(OCI.layerGzip, layer)],
      }),
    );
    const docker = put(
      DOCKER.manifest,
      jsonBytes({
        schemaVersion: 2,
        mediaType: DOCKER.manifest,
        config: descriptor(DOCKER.config, config),
        layers: [descriptor(DOCKER.layerGzip, layer)],
      }),
    );
    ociEntries.push(descriptor(OCI.manifest, oci, { platform }));
    dockerEntries.push(descriptor(DOCKER.manifest, docker, { platform }));
    refs.push({ tag: a.tag, desc: descriptor(OCI.manifest, oci, { platform }) });
    refs.push({ tag: `${a.tag}-docker`, desc: descriptor(DOCKER.manifest, docker, { platform }) });
    built.push({
      tag: a.tag,
      debArch: a.deb,
      platform,
      digest: digestOf(oci),
      dockerDigest: digestOf(docker),
      config: digestOf(config),
      layer: digestOf(layer),
      layerSize: layer.length,
      diffId,
      debVersion: version,
    });
  }
  const index = put(
    OCI.index,
    jsonBytes({ schemaVersion: 2, mediaType: OCI.index, manifests: ociEntries }),
  );
  const list = put(
    DOCKER.manifestList,
    jsonBytes({ schemaVersion: 2, mediaType: DOCKER.manifestList, manifests: dockerEntries }),
  );
  refs.unshift(
    { tag: "latest", desc: descriptor(OCI.index, index) },
    { tag: "docker", desc: descriptor(DOCKER.manifestList, list) },
  );
  const result: BuildResult = {
    indexDigest: digestOf(index),
    dockerListDigest: digestOf(list),
    arches: built,
    tags: refs.map((r) => r.tag),
  };
  await writeLayout(opts.layoutDir, blobs, refs);
  await Deno.writeTextFile(stampPath, JSON.stringify({ key: stampKey, result }, null, 2) + "\n");
  await Deno.remove(opts.workDir, { recursive: true }).catch(() => {});
  return result;
}

/**
 * Writes the OCI image layout through lib/oci's {@link OciLayout}: every blob, then the untagged
 * children, then the tags in order; into a temp dir renamed over `dir` at the end.
 */
async function writeLayout(
  dir: string,
  blobs: Map<string, Blob>,
  refs: { tag: string; desc: { mediaType: string; digest: string } }[],
): Promise<void> {
  const tmp = `${dir}.tmp-${Deno.pid}`;
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  const layout = await OciLayout.open(tmp, { create: true });
  const manifestTypes = new Set<string>([
    OCI.manifest,
    OCI.index,
    DOCKER.manifest,
    DOCKER.manifestList,
  ]);
  for (const [digest, blob] of blobs) {
    if (manifestTypes.has(blob.mediaType)) continue;
    await layout.writeBlob(blob.bytes, { expected: { digest, size: blob.bytes.length } });
  }
  // Image manifests before indexes, so every child exists when its parent is stored.
  const order = [OCI.manifest, DOCKER.manifest, OCI.index, DOCKER.manifestList] as string[];
  for (const type of order) {
    for (const [digest, blob] of blobs) {
      if (blob.mediaType === type) {
        await layout.putManifest({ bytes: blob.bytes, mediaType: type, digest });
      }
    }
  }
  for (const r of refs) {
    const blob = blobs.get(r.desc.digest)!;
    await layout.putManifest({
      bytes: blob.bytes,
      mediaType: r.desc.mediaType,
      digest: r.desc.digest,
    }, r.tag);
  }
  const old = `${dir}.old-${Deno.pid}`;
  if (exists(dir)) await Deno.rename(dir, old);
  await Deno.rename(tmp, dir);
  await Deno.remove(old, { recursive: true }).catch(() => {});
}
