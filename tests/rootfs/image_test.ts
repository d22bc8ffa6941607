/**
 * unpackImage against umoci: the test bed's busybox (pulled from the plain registry with our
 * RegistrySession) and a hand-made three-layer image (gzip, multi-frame zstd, plain; whiteouts,
 * opaque directories, symlinked parents, hard links, devices, setuid, xattrs) unpacked by us and
 * by `umoci unpack` must give the same tree: paths, types, modes, owners, sizes, content hashes,
 * link targets, hard-link groups, device numbers, times, xattrs.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import zlib from "node:zlib";
import { KanikoError } from "../../lib/errors.ts";
import { getXattr, listXattrs, lstatNs } from "../../lib/fs/meta.ts";
import { canonicalJson } from "../../lib/oci/canonical_json.ts";
import type { RawManifest } from "../../lib/oci/content.ts";
import { digestOf } from "../../lib/oci/digest.ts";
import { OciLayout } from "../../lib/oci/layout.ts";
import { OCI } from "../../lib/oci/media_types.ts";
import { type Descriptor, ImageConfigSchema, parseJson } from "../../lib/oci/schemas.ts";
import { defaultRegistryOptions } from "../../lib/registry/options.ts";
import { parseReference } from "../../lib/registry/reference.ts";
import { RegistrySession } from "../../lib/registry/session.ts";
import { unpackImage } from "../../lib/rootfs/image.ts";
import { createTarStream, type TarHeader, type TarWriteEntry } from "../../lib/tar/mod.ts";
import { rejects } from "../_helpers.ts";
import { ref, skopeo, tempDir, testbed } from "../_testbed.ts";

const enc = new TextEncoder();
const isRoot = Deno.uid() === 0;

/** Every entry under `root`: path → one line of what umoci and we must agree on. */
function describeTree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const inodes = new Map<bigint, string>();
  const paths: string[] = [];
  const walk = (rel: string) => {
    const names = [...Deno.readDirSync(rel ? `${root}/${rel}` : root)].map((e) => e.name).sort();
    for (const name of names) {
      const path = rel ? `${rel}/${name}` : name;
      paths.push(path);
      if (lstatNs(`${root}/${path}`)!.type === "dir") walk(path);
    }
  };
  walk("");
  for (const path of paths) {
    const abs = `${root}/${path}`;
    const m = lstatNs(abs)!;
    const parts = [m.type, m.mode.toString(8), `${m.uid}:${m.gid}`, `mtime=${m.mtimeNs}`];
    if (m.type === "file") {
      const hash = createHash("sha256").update(Deno.readFileSync(abs)).digest("hex");
      parts.push(`size=${m.size}`, hash.slice(0, 16));
    }
    if (m.type === "symlink") parts.push(`-> ${Deno.readLinkSync(abs)}`);
    if (m.type === "char" || m.type === "block") parts.push(`${m.rdevMajor},${m.rdevMinor}`);
    if (m.type !== "dir" && m.nlink > 1) {
      const first = inodes.get(m.ino);
      if (first === undefined) inodes.set(m.ino, path);
      else parts.push(`hardlink of ${first}`);
    }
    for (const name of listXattrs(abs)) {
      parts.push(`${name}=${Array.from(getXattr(abs, name) ?? []).join(".")}`);
    }
    out.set(path, parts.join(" "));
  }
  return out;
}

/** Differences between two tree descriptions, as readable lines (empty when equal). */
function treeDiff(ours: Map<string, string>, theirs: Map<string, string>): string[] {
  const lines: string[] = [];
  for (const [path, d] of ours) {
    const t = theirs.get(path);
    if (t === undefined) lines.push(`only ours:   ${path} ${d}`);
    else if (t !== d) lines.push(`differs:     ${path}\n  ours:   ${d}\n  umoci:  ${t}`);
  }
  for (const [path, t] of theirs) if (!ours.has(path)) lines.push(`only umoci:  ${path} ${t}`);
  return lines;
}

async function run(cmd: string, args: string[]): Promise<void> {
  const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!r.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed:\n${new TextDecoder().decode(r.stderr)}`);
  }
}

async function umociUnpack(layoutDir: string, tag: string, bundle: string): Promise<string> {
  const args = ["unpack", "--image", `${layoutDir}:${tag}`, bundle];
  await run("umoci", isRoot ? args : ["unpack", "--rootless", ...args.slice(1)]);
  return `${bundle}/rootfs`;
}

Deno.test({
  name: "unpackImage: busybox from the test bed's registry matches umoci unpack",
  ignore: !isRoot,
  async fn() {
    const env = await testbed();
    await using tmp = await tempDir("rootfs-busybox-");
    const image = ref(env, "plain", "library/busybox:amd64");

    // ours: RegistrySession → manifest → unpackImage, diff_ids checked against the config
    const session = new RegistrySession(defaultRegistryOptions());
    const ours = `${tmp.path}/ours`;
    await Deno.mkdir(ours);
    try {
      const { repository, manifest } = await session.resolvePull(parseReference(image));
      const parsed = JSON.parse(new TextDecoder().decode(manifest.bytes));
      const configBytes = new Uint8Array(
        await new Response(await repository.openBlob(parsed.config)).arrayBuffer(),
      );
      const config = parseJson(ImageConfigSchema, configBytes, "busybox config");
      const events: string[] = [];
      const result = await unpackImage(ours, repository, manifest, {
        devices: true,
        diffIds: config.rootfs.diff_ids,
        onLayer: (e) => events.push(`${e.index}/${e.count} ${e.done}`),
      });
      assert.deepEqual(events, ["0/1 false", "0/1 true"]);
      const arch = env.busybox.arches.find((a) => a.tag === "amd64")!;
      assert.equal(result.digest, arch.digest);
      assert.equal(result.layers[0].diffId, arch.diffId);
      assert.equal(result.layers[0].compression, "gzip");
    } finally {
      session.close();
    }

    // umoci: skopeo copy to an OCI layout, then umoci unpack
    const layout = `${tmp.path}/layout`;
    const copied = await skopeo(["copy", `docker://${image}`, `oci:${layout}:busybox`], {
      env,
      src: "plain",
    });
    assert.equal(copied.code, 0, copied.stderr);
    const theirs = await umociUnpack(layout, "busybox", `${tmp.path}/bundle`);

    const a = describeTree(ours);
    const b = describeTree(theirs);
    assert.ok(a.size > 200, `busybox has hundreds of entries, got ${a.size}`);
    assert.deepEqual(treeDiff(a, b), []);
  },
});

// --- a hand-made image -----------------------------------------------------------------------

const T = 1_700_000_000_000_000_000n;

function f(name: string, text: string, h: Partial<TarHeader> = {}): TarWriteEntry {
  return {
    header: { name, type: "file", mode: 0o644, mtime: T + 11n, ...h },
    body: enc.encode(text),
  };
}
function d(name: string, h: Partial<TarHeader> = {}): TarWriteEntry {
  return { header: { name, type: "dir", mode: 0o755, mtime: T + 22n, ...h } };
}
function l(name: string, linkname: string, h: Partial<TarHeader> = {}): TarWriteEntry {
  return { header: { name, type: "symlink", linkname, mode: 0o777, mtime: T + 33n, ...h } };
}
function hl(name: string, linkname: string): TarWriteEntry {
  return { header: { name, type: "hardlink", linkname, mode: 0o755, mtime: T + 44n } };
}
function wh(name: string): TarWriteEntry {
  return { header: { name, type: "file", mode: 0o600, mtime: T } };
}

const CAP = Uint8Array.from([1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

const LAYERS: TarWriteEntry[][] = [
  [
    d("bin/", { mtime: T + 1n }),
    d("dev/"),
    ...(isRoot
      ? [
        {
          header: {
            name: "dev/null",
            type: "char" as const,
            mode: 0o666,
            devmajor: 1,
            devminor: 3,
          },
        },
        { header: { name: "dev/fifo", type: "fifo" as const, mode: 0o600, mtime: T + 5n } },
      ]
      : []),
    d("etc/"),
    f("etc/passwd", "root:x:0:0::/root:/bin/sh\n"),
    f("etc/shadow", "root:*::::::\n", { mode: 0o640, gid: 42 }),
    d("opt/"),
    d("opt/dir/"),
    d("opt/dir/sub/"),
    f("opt/dir/sub/f", "f"),
    d("tmp/", { mode: 0o1777 }),
    d("usr/"),
    d("usr/bin/"),
    f("usr/bin/prog", "#!/bin/sh\necho prog\n", { mode: 0o755 }),
    hl("usr/bin/prog2", "usr/bin/prog"),
    f("usr/bin/su", "su", { mode: 0o4755 }),
    f("usr/bin/ping", "ping", { mode: 0o755, xattrs: { "security.capability": CAP } }),
    f("usr/bin/mine", "mine", { mode: 0o2750, uid: 1000, gid: 1000 }),
    d("usr/lib/"),
    f("usr/lib/a.so", "a"),
    f("usr/lib/b.so", "b"),
    d("var/", { mtime: T + 2n }),
    d("var/cache/", { mode: 0o700, uid: 5, gid: 6 }),
    f("var/cache/old", "old"),
    d("var/cache/deep/"),
    f("var/cache/deep/x", "x"),
    l("lib", "usr/lib"),
    l("sbin", "/usr/bin"),
  ],
  [
    d("etc/"),
    wh("etc/.wh.shadow"),
    d("usr/lib/"),
    wh("usr/lib/.wh.a.so"),
    l("usr/lib/b.so", "a.so.1"),
    d("var/cache/", { mode: 0o750, uid: 5, gid: 6, mtime: T + 3n }),
    wh("var/cache/.wh..wh..opq"),
    f("var/cache/new", "new"),
    d("opt/"),
    wh("opt/.wh.dir"),
    f("lib/c.so", "c via the symlink"),
    f("sbin/tool", "tool via an absolute symlink", { mode: 0o700 }),
    f("etc/passwd", "root:x:0:0::/root:/bin/ash\n", { mtime: T + 7n }),
  ],
  [
    d("usr/"),
    d("usr/bin/"),
    wh("usr/bin/.wh.prog"),
    f("usr/bin/big", "y".repeat(200_000), { mode: 0o755 }),
    hl("usr/bin/big2", "usr/bin/big"),
    d("tmp/", { mode: 0o1777, mtime: T + 9n }),
    f("tmp/t", "t"),
    d("var/"),
    d("var/cache/", { mode: 0o750, uid: 5, gid: 6, mtime: T + 4n }),
    f("var/cache/l3", "opaque after the layer's own entries"),
    wh("var/cache/.wh..wh..opq"),
  ],
];

async function tarBytes(entries: TarWriteEntry[]): Promise<Uint8Array> {
  return new Uint8Array(await new Response(createTarStream(entries)).arrayBuffer());
}

/** Stores the hand-made image in a layout (gzip, two-frame zstd, plain layers), tagged `t`. */
async function handMade(
  dir: string,
  zstd = true,
): Promise<{ layout: OciLayout; manifest: RawManifest; diffIds: string[] }> {
  const layout = await OciLayout.open(dir, { create: true });
  const layers: Descriptor[] = [];
  const diffIds: string[] = [];
  for (const [i, entries] of LAYERS.entries()) {
    const tar = await tarBytes(entries);
    diffIds.push(digestOf(tar));
    let blob: Uint8Array;
    let mediaType: string;
    if (i === 0 || i === 1 && !zstd) {
      blob = new Uint8Array(zlib.gzipSync(tar));
      mediaType = OCI.layerGzip;
    } else if (i === 1 && zstd) {
      const half = Math.floor(tar.length / 2);
      const a = zlib.zstdCompressSync(tar.subarray(0, half));
      const b = zlib.zstdCompressSync(tar.subarray(half));
      blob = new Uint8Array([...a, ...b]);
      mediaType = OCI.layerZstd;
    } else {
      blob = tar;
      mediaType = OCI.layer;
    }
    const { digest, size } = await layout.writeBlob(blob);
    layers.push({ mediaType, digest, size });
  }
  const configBytes = canonicalJson({
    architecture: "amd64",
    os: "linux",
    config: {},
    rootfs: { type: "layers", diff_ids: diffIds },
  });
  const c = await layout.writeBlob(configBytes);
  const bytes = canonicalJson({
    schemaVersion: 2,
    mediaType: OCI.manifest,
    config: { mediaType: OCI.config, digest: c.digest, size: c.size },
    layers,
  });
  const manifest = { bytes, mediaType: OCI.manifest, digest: digestOf(bytes) };
  await layout.putManifest(manifest, "t");
  return { layout, manifest, diffIds };
}

Deno.test("unpackImage: a three-layer image (gzip, zstd, plain) matches umoci unpack", async () => {
  await using tmp = await tempDir("rootfs-handmade-");
  const { layout, manifest, diffIds } = await handMade(`${tmp.path}/layout`);
  const ours = `${tmp.path}/ours`;
  await Deno.mkdir(ours);
  const result = await unpackImage(ours, layout, manifest, { devices: isRoot, diffIds });
  assert.deepEqual(result.layers.map((x) => x.compression), ["gzip", "zstd", "none"]);
  assert.deepEqual(result.layers.map((x) => x.diffId), diffIds);

  // spot checks, then the whole tree against umoci
  assert.equal(await Deno.readTextFile(`${ours}/usr/lib/c.so`), "c via the symlink");
  assert.equal(await Deno.readTextFile(`${ours}/usr/bin/tool`), "tool via an absolute symlink");
  assert.deepEqual([...Deno.readDirSync(`${ours}/var/cache`)].map((e) => e.name), ["l3"]);
  assert.deepEqual([...Deno.readDirSync(`${ours}/opt`)], []);
  assert.equal(lstatNs(`${ours}/usr/bin/prog`), undefined);
  assert.equal(lstatNs(`${ours}/usr/bin/prog2`)!.nlink, 1);
  assert.equal(lstatNs(`${ours}/etc/shadow`), undefined);

  // umoci 0.4 has no zstd: it gets the same tars with the zstd layer gzipped instead
  await handMade(`${tmp.path}/layout-gz`, false);
  const theirs = await umociUnpack(`${tmp.path}/layout-gz`, "t", `${tmp.path}/bundle`);
  assert.deepEqual(treeDiff(describeTree(ours), describeTree(theirs)), []);
});

Deno.test("unpackImage: an index picks the platform; bad digests, diff_ids and media types fail", async () => {
  await using tmp = await tempDir("rootfs-index-");
  const { layout, manifest, diffIds } = await handMade(`${tmp.path}/layout`);
  const indexBytes = canonicalJson({
    schemaVersion: 2,
    mediaType: OCI.index,
    manifests: [
      {
        mediaType: OCI.manifest,
        digest: digestOf(enc.encode("elsewhere")),
        size: 1,
        platform: { os: "linux", architecture: "arm64" },
      },
      {
        mediaType: OCI.manifest,
        digest: manifest.digest,
        size: manifest.bytes.length,
        platform: { os: "linux", architecture: "amd64" },
      },
    ],
  });
  const index = { bytes: indexBytes, mediaType: OCI.index, digest: digestOf(indexBytes) };
  const root = `${tmp.path}/r1`;
  await Deno.mkdir(root);
  const r = await unpackImage(root, layout, index, {
    platform: { os: "linux", architecture: "amd64" },
    devices: isRoot,
  });
  assert.equal(r.digest, manifest.digest);
  assert.equal(r.layers.length, 3);
  // a descriptor is fetched from the source by digest
  const byDesc = await unpackImage(
    `${tmp.path}/r1`,
    layout,
    { mediaType: OCI.manifest, digest: manifest.digest, size: manifest.bytes.length },
    { devices: isRoot },
  );
  assert.equal(byDesc.digest, manifest.digest);

  const fresh = async (name: string) => {
    const p = `${tmp.path}/${name}`;
    await Deno.mkdir(p);
    return p;
  };
  const e1 = await rejects(
    unpackImage(await fresh("r2"), layout, index, {
      platform: { os: "linux", architecture: "s390x" },
    }),
  );
  assert.equal(e1.code, "PLATFORM_NOT_FOUND");

  const e2 = await rejects(
    unpackImage(await fresh("r3"), layout, manifest, {
      diffIds: [diffIds[0], diffIds[0], diffIds[2]],
      devices: isRoot,
    }),
  );
  assert.match(
    e2.message,
    /layer 2\/3 \(sha256:[0-9a-f]+\): uncompressed digest is sha256:[0-9a-f]+, expected/,
  );

  const parsed = JSON.parse(new TextDecoder().decode(manifest.bytes));
  const tampered = { ...parsed, layers: [{ ...parsed.layers[0], digest: diffIds[1] }] };
  const e3 = await rejects(unpackImage(await fresh("r4"), layout, tampered));
  assert.ok(e3 instanceof KanikoError);
  assert.doesNotMatch(e3.message, /\n/);

  const wrongSize = {
    ...parsed,
    layers: [{ ...parsed.layers[2], size: parsed.layers[2].size + 1 }],
  };
  const e4 = await rejects(unpackImage(await fresh("r5"), layout, wrongSize));
  assert.match(e4.message, /bytes|size/);

  const attestation = {
    ...parsed,
    layers: [{ ...parsed.layers[0], mediaType: "application/vnd.in-toto+json" }],
  };
  const e5 = await rejects(
    unpackImage(await fresh("r6"), layout, attestation, { what: "chart:1" }),
  );
  assert.match(e5.message, /^chart:1 layer 1\/1 .* is not a filesystem layer/);
});

Deno.test("unpackImage: multi-member gzip works; corrupt and bzip2 layers fail in one line", async () => {
  await using tmp = await tempDir("rootfs-blobs-");
  const layout = await OciLayout.open(`${tmp.path}/layout`, { create: true });
  const image = async (blob: Uint8Array, mediaType = OCI.layerGzip) => {
    const { digest, size } = await layout.writeBlob(blob);
    return {
      schemaVersion: 2 as const,
      mediaType: OCI.manifest,
      config: { mediaType: OCI.config, digest, size },
      layers: [{ mediaType, digest, size }],
    };
  };
  const tar = await tarBytes([f("a", "a".repeat(5000)), f("b", "b")]);
  const half = 3000;
  const multi = new Uint8Array([
    ...zlib.gzipSync(tar.subarray(0, half)),
    ...zlib.gzipSync(tar.subarray(half)),
  ]);
  const root = `${tmp.path}/ok`;
  await Deno.mkdir(root);
  await unpackImage(root, layout, await image(multi), { what: "multi:1" });
  assert.equal(await Deno.readTextFile(`${root}/b`), "b");

  const corrupt = new Uint8Array(zlib.gzipSync(tar));
  corrupt.fill(0x55, 20, 200);
  const e1 = await rejects(
    unpackImage(`${tmp.path}/ok`, layout, await image(corrupt), { what: "bad:1" }),
  );
  assert.match(e1.message, /^bad:1 layer 1\/1 \(sha256:[0-9a-f]+\)/);
  assert.doesNotMatch(e1.message, /\n/);

  const bz = new Uint8Array([0x42, 0x5a, 0x68, 0x39, ...tar.subarray(0, 100)]);
  const e2 = await rejects(
    unpackImage(`${tmp.path}/ok`, layout, await image(bz), { what: "bz:1" }),
  );
  assert.match(e2.message, /^bz:1 layer 1\/1 .* is bzip2-compressed, which is not supported/);
});
