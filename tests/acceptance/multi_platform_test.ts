/**
 * Acceptance of multi-platform builds (issue 5) on this machine, through the CLI, against the
 * test bed's real registry (with the fault proxy in front where requests must be counted or
 * refused): a RUN-less Dockerfile over the busybox index becomes one OCI index for amd64, arm64,
 * arm/v7 and s390x whose children carry the right config platform and the right architecture's
 * busybox (ELF e_machine of /bin/busybox read from the base layer); the COPY layer is one blob,
 * written and uploaded once; RUN for a foreign platform fails before any request; `--oci-mode=docker` and
 * `auto` (against a registry refusing OCI types) give Docker trees; `--reproducible` index
 * digests are stable; `--dry-run` plans and pushes nothing; digest files name the index.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type FaultProxy, startFaultProxy } from "../../scripts/fault_proxy.ts";
import {
  assertBuilt,
  type Engine,
  engine,
  kaniko,
  noEngine,
  tempDir,
  writeContext,
} from "../build/_engine.ts";
import { regFetch } from "../_testbed.ts";

const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
const ACCEPT = [OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST].join(", ");

/** ELF e_machine of each architecture's busybox. */
const E_MACHINE: Record<string, number> = { amd64: 62, arm64: 183, arm: 40, s390x: 22 };
const FOUR = ["linux/amd64", "linux/arm64", "linux/arm/v7", "linux/s390x"];

const RUNLESS = (base: string) =>
  `FROM ${base}\nARG TARGETPLATFORM\nCOPY files/ /app/\nENV APP_PLATFORM=$TARGETPLATFORM\n` +
  `LABEL org.example.app=demo\n`;

/** A context of a few files (the same bytes in every build). */
function files(): Record<string, string | Uint8Array> {
  const blob = new Uint8Array(256 * 1024).map((_, i) => (i * 7919) % 251);
  return { "files/a.txt": "a\n", "files/blob.bin": blob };
}

/** Runs the CLI for a build of `context` with chroot isolation and a private kaniko dir. */
async function cli(e: Engine, context: string, args: string[], env: Record<string, string> = {}) {
  await using kdir = await tempDir("kaniko-mp-dir-");
  const dockerfile = join(context, "Dockerfile");
  return await kaniko(e, [
    "--context",
    context,
    "--dockerfile",
    dockerfile,
    "--isolation",
    "chroot",
    "--kaniko-dir",
    kdir.path,
    ...e.flags,
    ...args,
  ], env);
}

/** A fault proxy in front of the plain registry, stopped at the end of `fn`. */
async function withProxy(e: Engine, fn: (p: FaultProxy) => Promise<void>): Promise<void> {
  const proxy = await startFaultProxy(e.env.registries.plain.url, []);
  try {
    await fn(proxy);
  } finally {
    await proxy.stop();
  }
}

/** A unique repository name. */
const repo = (name: string) => `mp/${name}-${crypto.randomUUID().slice(0, 8)}`;

/** A manifest (or index) of the plain registry, with its digest as served. */
async function manifest(e: Engine, name: string, ref: string) {
  const r = await regFetch(e.env, "plain", `/v2/${name}/manifests/${ref}`, {
    headers: { accept: ACCEPT },
  });
  assert.equal(r.status, 200, `GET ${name}:${ref}: ${r.text()}`);
  return { json: r.json(), digest: r.headers.get("docker-content-digest")!, bytes: r.body };
}

async function blob(e: Engine, name: string, digest: string): Promise<Uint8Array> {
  const r = await regFetch(e.env, "plain", `/v2/${name}/blobs/${digest}`);
  assert.equal(r.status, 200, `GET blob ${digest}`);
  return r.body;
}

/** The bytes of `path` in a gzip'd (or plain) tar, read with a minimal ustar walker. */
async function fileInLayer(gz: Uint8Array, path: string): Promise<Uint8Array | undefined> {
  const gzip = gz[0] === 0x1f && gz[1] === 0x8b;
  const tar = gzip
    ? new Uint8Array(
      await new Response(
        new Blob([gz as BlobPart]).stream().pipeThrough(new DecompressionStream("gzip")),
      ).arrayBuffer(),
    )
    : gz;
  const text = (a: number, b: number) =>
    new TextDecoder().decode(tar.subarray(a, b)).replace(/\0.*$/s, "");
  let longName: string | undefined;
  for (let off = 0; off + 512 <= tar.length;) {
    if (tar.subarray(off, off + 512).every((b) => b === 0)) break;
    const size = parseInt(text(off + 124, off + 136).trim() || "0", 8);
    const type = String.fromCharCode(tar[off + 156]);
    const prefix = text(off + 345, off + 500);
    let name = longName ?? (prefix ? `${prefix}/${text(off, off + 100)}` : text(off, off + 100));
    longName = undefined;
    const data = tar.subarray(off + 512, off + 512 + size);
    if (type === "x") {
      const m = new TextDecoder().decode(data).match(/\d+ path=([^\n]*)\n/);
      if (m) longName = m[1];
    } else if ((type === "0" || type === "\0") && name.replace(/^\.?\//, "") === path) {
      return data;
    }
    name = "";
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return undefined;
}

/** e_machine of an ELF file (its byte order from EI_DATA). */
function elfMachine(elf: Uint8Array): number {
  assert.deepEqual([...elf.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46], "not an ELF file");
  const view = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  return view.getUint16(18, elf[5] === 1);
}

async function readLines(path: string): Promise<string> {
  return (await Deno.readTextFile(path)).trim();
}

Deno.test({
  name: "acceptance: a RUN-less Dockerfile builds for amd64, arm64, arm/v7, s390x into one index",
  ignore: noEngine,
  async fn() {
    const e = await engine();
    await using ctx = await writeContext({ Dockerfile: RUNLESS(e.base), ...files() });
    await using out = await tempDir("kaniko-mp-out-");
    await withProxy(e, async (proxy) => {
      const name = repo("four");
      const dest = `${proxy.host}/${name}:1`;
      const r = await cli(e, ctx.path, [
        "--insecure-registry",
        proxy.host,
        "--multi-platform",
        FOUR.join(","),
        "--publish-index",
        "--destination",
        dest,
        "--digest-file",
        join(out.path, "digest"),
        "--image-name-with-digest-file",
        join(out.path, "name"),
        "--image-name-tag-with-digest-file",
        join(out.path, "name-tag"),
      ]);
      assertBuilt(r);
      const index = await manifest(e, name, "1");
      assert.equal(index.json.mediaType, OCI_INDEX);
      // Entries in the order given, with variants.
      assert.deepEqual(index.json.manifests.map((m: any) => m.platform), [
        { architecture: "amd64", os: "linux" },
        { architecture: "arm64", os: "linux" },
        { architecture: "arm", os: "linux", variant: "v7" },
        { architecture: "s390x", os: "linux" },
      ]);
      const copyLayers = new Set<string>();
      for (const [i, entry] of index.json.manifests.entries()) {
        assert.equal(entry.mediaType, OCI_MANIFEST);
        const child = await manifest(e, name, entry.digest);
        assert.equal(child.digest, entry.digest);
        const config = JSON.parse(
          new TextDecoder().decode(await blob(e, name, child.json.config.digest)),
        );
        const [os, arch, variant] = FOUR[i].split("/");
        // arm64's "v8" is its only variant (the base image's config says it; the entry not).
        const configVariant = arch === "arm64" && config.variant === "v8"
          ? undefined
          : config.variant;
        assert.deepEqual([config.os, config.architecture, configVariant], [os, arch, variant]);
        assert.ok(config.config.Env.includes(`APP_PLATFORM=${FOUR[i]}`), config.config.Env);
        assert.equal(config.config.Labels["org.example.app"], "demo");
        // The base layer holds this architecture's busybox.
        const busybox = await fileInLayer(
          await blob(e, name, child.json.layers[0].digest),
          "bin/busybox",
        );
        assert.ok(busybox, `bin/busybox in the ${FOUR[i]} base layer`);
        assert.equal(elfMachine(busybox), E_MACHINE[arch], `e_machine of ${FOUR[i]} busybox`);
        const copy = child.json.layers.at(-1);
        copyLayers.add(copy.digest);
        assert.ok(await fileInLayer(await blob(e, name, copy.digest), "app/blob.bin"));
      }
      // The COPY layer is one blob in every child, written (compressed) once, uploaded once.
      assert.equal(copyLayers.size, 1);
      assert.match(r.stderr, /1 layers written, 3 shared between platforms/);
      const [copyDigest] = copyLayers;
      const uploads = proxy.stats().log.filter((l) =>
        l.method === "PUT" && l.digest === copyDigest
      );
      assert.equal(
        uploads.length,
        1,
        JSON.stringify(proxy.stats().log.map((l) => `${l.method} ${l.path}`)),
      );
      // The digest files name the index; the summary names it and every child.
      const host = e.env.registries.plain.host;
      assert.equal(await readLines(join(out.path, "digest")), index.digest);
      assert.equal(
        await readLines(join(out.path, "name")),
        `${proxy.host}/${name}@${index.digest}`,
      );
      assert.equal(
        await readLines(join(out.path, "name-tag")),
        `${proxy.host}/${name}:1@${index.digest}`,
      );
      assert.match(r.stderr, new RegExp(`built OCI image index ${index.digest} of 4 platforms`));
      for (const m of index.json.manifests) assert.ok(r.stderr.includes(m.digest));
      assert.ok(host);
    });
  },
});

Deno.test({
  name: "acceptance: RUN for linux/arm64 fails fast under local, before any request",
  ignore: noEngine || Deno.build.arch !== "x86_64",
  async fn() {
    const e = await engine();
    await withProxy(e, async (proxy) => {
      const df = `FROM ${proxy.host}/library/busybox:latest\nCOPY files/ /app/\nRUN echo hi\n`;
      await using ctx = await writeContext({ Dockerfile: df, ...files() });
      const started = performance.now();
      const r = await cli(e, ctx.path, [
        "--insecure-registry",
        proxy.host,
        "--multi-platform",
        "linux/amd64,linux/arm64",
        "--publish-index",
        "--destination",
        `${proxy.host}/${repo("run")}:1`,
      ]);
      const seconds = (performance.now() - started) / 1000;
      assert.equal(r.code, 1, r.stderr);
      const lines = r.stderr.trimEnd().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(
        lines[0],
        /^error: linux\/arm64: the Dockerfile runs RUN steps \(\S*Dockerfile:3\), and this amd64 host cannot run linux\/arm64 binaries without emulation; build it with --driver=k8s on arm64 nodes or --driver=ci$/,
      );
      assert.equal(proxy.stats().requests, 0, "no request may reach the registry");
      assert.ok(seconds < 10, `took ${seconds}s`);
    });
  },
});

Deno.test({
  name: "acceptance: --oci-mode=docker gives a Docker manifest list of v2s2 children",
  ignore: noEngine,
  async fn() {
    const e = await engine();
    await using ctx = await writeContext({ Dockerfile: RUNLESS(e.base), ...files() });
    const name = repo("docker");
    const r = await cli(e, ctx.path, [
      "--multi-platform",
      "linux/arm64,linux/arm/v7",
      "--oci-mode=docker",
      "--publish-index",
      "--destination",
      `${e.host}/${name}:1`,
    ]);
    assertBuilt(r);
    await assertDockerTree(e, name, "1", ["arm64", "arm"]);
  },
});

/** The tag is a Docker manifest list whose children are v2s2 with Docker layer types. */
async function assertDockerTree(e: Engine, name: string, tag: string, archs: string[]) {
  const list = await manifest(e, name, tag);
  assert.equal(list.json.mediaType, DOCKER_LIST);
  assert.deepEqual(list.json.manifests.map((m: any) => m.platform.architecture), archs);
  for (const entry of list.json.manifests) {
    assert.equal(entry.mediaType, DOCKER_MANIFEST);
    const child = await manifest(e, name, entry.digest);
    assert.equal(child.json.mediaType, DOCKER_MANIFEST);
    assert.equal(child.json.config.mediaType, "application/vnd.docker.container.image.v1+json");
    for (const l of child.json.layers) {
      assert.equal(l.mediaType, "application/vnd.docker.image.rootfs.diff.tar.gzip");
    }
  }
  return list;
}

Deno.test({
  name: "acceptance: --oci-mode=auto falls back to a Docker tree when the registry refuses OCI",
  ignore: noEngine,
  async fn() {
    const e = await engine();
    await using ctx = await writeContext({ Dockerfile: RUNLESS(e.base), ...files() });
    await withProxy(e, async (proxy) => {
      proxy.setRules([{
        id: "no-oci",
        method: "PUT",
        path: "/manifests/",
        matchHeaders: { "content-type": "application/vnd\\.oci\\." },
        status: 400,
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          errors: [{ code: "MANIFEST_INVALID", message: "manifest invalid", detail: {} }],
        }),
      }]);
      const name = repo("auto");
      const r = await cli(e, ctx.path, [
        "--insecure-registry",
        proxy.host,
        "--multi-platform",
        "linux/amd64,linux/s390x",
        "--publish-index",
        "--destination",
        `${proxy.host}/${name}:1`,
        "--digest-file",
        join(ctx.path, "digest"),
      ]);
      assertBuilt(r);
      assert.match(r.stderr, /WARN.*refused OCI media types.*Docker manifest list/);
      assert.ok(proxy.stats().rules[0].faulted >= 1);
      const list = await assertDockerTree(e, name, "1", ["amd64", "s390x"]);
      assert.equal(await readLines(join(ctx.path, "digest")), list.digest);
      assert.match(r.stderr, new RegExp(`built Docker manifest list ${list.digest}`));
    });
  },
});

Deno.test({
  name: "acceptance: --reproducible twice gives the same index digest (and SOURCE_DATE_EPOCH)",
  ignore: noEngine,
  async fn() {
    const e = await engine();
    await using ctx = await writeContext({ Dockerfile: RUNLESS(e.base), ...files() });
    const digests: string[] = [];
    const build = async (args: string[], env: Record<string, string> = {}) => {
      const file = join(ctx.path, `digest-${digests.length}`);
      const r = await cli(e, ctx.path, [
        "--multi-platform",
        "linux/arm64,linux/amd64",
        "--publish-index",
        "--destination",
        `${e.host}/${repo("repro")}:1`,
        "--digest-file",
        file,
        ...args,
      ], env);
      assertBuilt(r);
      digests.push(await readLines(file));
    };
    await build(["--reproducible"]);
    await new Promise((r) => setTimeout(r, 1100)); // a later second: nothing time-dependent
    await build(["--reproducible"]);
    assert.equal(digests[0], digests[1]);
    await build([], { SOURCE_DATE_EPOCH: "1700000000" });
    await build([], { SOURCE_DATE_EPOCH: "1700000000" });
    assert.equal(digests[2], digests[3]);
    assert.notEqual(digests[0], digests[2]);
  },
});

Deno.test({
  name: "acceptance: --dry-run prints each platform's plan and driver, and pulls or pushes nothing",
  ignore: noEngine,
  async fn() {
    const e = await engine();
    await withProxy(e, async (proxy) => {
      const df = `FROM ${proxy.host}/library/busybox:latest\nCOPY files/ /app/\nRUN echo hi\n`;
      await using ctx = await writeContext({ Dockerfile: df, ...files() });
      const r = await cli(e, ctx.path, [
        "--dry-run",
        "--insecure-registry",
        proxy.host,
        "--multi-platform",
        "linux/amd64,linux/arm64/v8",
        "--publish-index",
        "--destination",
        `${proxy.host}/${repo("dry")}:1`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trimEnd().split("\n");
      assert.equal(lines[0], "platform linux/amd64");
      assert.ok(lines.includes("platform linux/arm64"), r.stdout);
      assert.ok(lines.includes("linux/amd64: local, native, RUN steps for linux/amd64, run here"));
      assert.ok(
        lines.some((l) =>
          /^linux\/arm64: local, not native, RUN steps for linux\/arm64, which this host cannot run/
            .test(l)
        ),
        r.stdout,
      );
      assert.match(
        lines.at(-1)!,
        /^dry run: nothing was pulled, built or pushed; would push an OCI image index \(.*\) of 2 platforms to /,
      );
      assert.equal(proxy.stats().requests, 0);
    });
  },
});
