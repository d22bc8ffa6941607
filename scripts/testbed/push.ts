/**
 * Pushing the busybox layout to the registries. {@link copyImage} is the single place that
 * invokes a copier: our own CLI (`cli.ts copy`) by default; `TESTBED_PUSHER=skopeo` swaps in
 * skopeo, for debugging the test bed apart from the client only.
 * @module
 */
import { join } from "node:path";
import { BUSYBOX_REPO, PASS, type RegistryInfo, REPO_ROOT, USER } from "./env.ts";
import { type HttpEnv, manifestDigest, registryFetch } from "./http.ts";
import type { BuildResult } from "./busybox.ts";
import { run } from "./proc.ts";

/** Who pushes. */
export type Pusher = "cli" | "skopeo";

/** The pusher in force (`$TESTBED_PUSHER`, default `cli`). */
export function pusher(): Pusher {
  return Deno.env.get("TESTBED_PUSHER") === "skopeo" ? "skopeo" : "cli";
}

/** What a copy needs to reach a registry. */
export interface PushContext {
  ca: string;
  certDir: string;
  dockerConfigDir: string;
  authFile: string;
}

/**
 * The flags our CLI needs for a test-bed registry: `--insecure-registry HOST` for plain HTTP,
 * `--registry-certificate HOST=CA` for TLS (credentials come from `DOCKER_CONFIG`).
 */
export function cliRegistryFlags(reg: RegistryInfo, ca: string): string[] {
  return reg.tls
    ? ["--registry-certificate", `${reg.host}=${ca}`]
    : ["--insecure-registry", reg.host];
}

/**
 * Copies `oci:<layout>:<tag>` to `<registry>/<repo>:<tag>` (every child with `all`), with the
 * flags the registry needs: plain HTTP hosts as `--insecure-registry`, the test CA as
 * `--registry-certificate HOST=CA`, credentials from `DOCKER_CONFIG`.
 */
export async function copyImage(
  ctx: PushContext,
  layout: string,
  tag: string,
  reg: RegistryInfo,
  repo: string,
  opts: { all: boolean },
): Promise<void> {
  const src = `oci:${layout}:${tag}`;
  const dst = `${reg.host}/${repo}:${tag}`;
  if (pusher() === "skopeo") {
    if (await skopeoCannot(layout, tag)) {
      await putRawManifests(ctx, layout, tag, reg, repo);
      return;
    }
    const args = ["copy", "--quiet", "--preserve-digests", "--dest-authfile", ctx.authFile];
    if (opts.all) args.push("--all");
    args.push(reg.tls ? `--dest-cert-dir=${ctx.certDir}` : "--dest-tls-verify=false");
    await run("skopeo", [...args, src, `docker://${dst}`]);
    return;
  }
  const args = ["run", "-A", "--quiet", join(REPO_ROOT, "cli.ts"), "copy", src, dst];
  if (opts.all) args.push("--all");
  args.push(...cliRegistryFlags(reg, ctx.ca));
  await run(Deno.execPath(), args, {
    cwd: REPO_ROOT,
    env: { DOCKER_CONFIG: ctx.dockerConfigDir, NO_COLOR: "1" },
  });
}

/** skopeo's oci: transport ignores Docker-typed manifests in index.json. */
async function skopeoCannot(layout: string, tag: string): Promise<boolean> {
  const desc = await layoutRef(layout, tag);
  return desc.mediaType.startsWith("application/vnd.docker.");
}

async function layoutRef(
  layout: string,
  tag: string,
): Promise<{ mediaType: string; digest: string }> {
  const index = JSON.parse(await Deno.readTextFile(join(layout, "index.json")));
  const desc = index.manifests.find((m: any) =>
    m.annotations?.["org.opencontainers.image.ref.name"] === tag
  );
  if (!desc) throw new Error(`no tag ${tag} in ${layout}`);
  return desc;
}

/**
 * Debug path of the skopeo pusher for Docker-typed manifests: PUTs the manifest (and, for a
 * list, its children) as stored in the layout. Their blobs are the OCI images' blobs, pushed
 * before by `latest`.
 */
async function putRawManifests(
  ctx: PushContext,
  layout: string,
  tag: string,
  reg: RegistryInfo,
  repo: string,
): Promise<void> {
  const http = { registries: { r: reg }, ca: ctx.ca, user: USER, pass: PASS };
  const blob = (d: string) => Deno.readFile(join(layout, "blobs", "sha256", d.slice(7)));
  const put = async (mediaType: string, bytes: Uint8Array<ArrayBuffer>, ref: string) => {
    const res = await registryFetch(http, "r", `/v2/${repo}/manifests/${ref}`, {
      method: "PUT",
      headers: { "content-type": mediaType },
      body: bytes,
      scope: `repository:${repo}:pull,push`,
    });
    if (res.status !== 201) throw new Error(`PUT manifest ${ref}: ${res.status} ${res.text()}`);
  };
  const top = await layoutRef(layout, tag);
  const bytes = await blob(top.digest);
  if (top.mediaType === DOCKER_LIST) {
    for (const m of JSON.parse(new TextDecoder().decode(bytes)).manifests) {
      await put(m.mediaType, await blob(m.digest), m.digest);
    }
  }
  await put(top.mediaType, bytes, tag);
}

const DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";

/** Copier processes at once, over all registries (each is a Deno process; the machine has 2 cores). */
const MAX_COPIES = 4;
let running = 0;
const waiting: (() => void)[] = [];

/** Runs `fn` when fewer than {@link MAX_COPIES} copies are in flight. */
async function limit<T>(fn: () => Promise<T>): Promise<T> {
  while (running >= MAX_COPIES) await new Promise<void>((r) => waiting.push(r));
  running++;
  try {
    return await fn();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

/** Tag → expected digest, for every tag of the layout. */
export function expectedTags(build: BuildResult): Map<string, string> {
  const m = new Map<string, string>([
    ["latest", build.indexDigest],
    ["docker", build.dockerListDigest],
  ]);
  for (const a of build.arches) {
    m.set(a.tag, a.digest);
    m.set(`${a.tag}-docker`, a.dockerDigest);
  }
  return m;
}

/** The tags pushed to every registry (a subset of the layout's). */
export function pushedTags(build: BuildResult): string[] {
  return ["latest", ...build.arches.map((a) => a.tag), "docker", "amd64-docker"];
}

/**
 * Pushes the busybox tags to one registry unless it already serves every one of them with the
 * expected digest: `latest` (OCI index) and `docker` (manifest list) with `--all`, the rest
 * single manifests (their blobs are there by then, so those copies move no blob).
 */
export async function pushBusybox(
  http: HttpEnv,
  variant: string,
  ctx: PushContext,
  layout: string,
  build: BuildResult,
  log: (s: string) => void,
): Promise<"pushed" | "present"> {
  const expected = expectedTags(build);
  const tags = pushedTags(build);
  const missing: string[] = [];
  for (const tag of tags) {
    if ((await manifestDigest(http, variant, BUSYBOX_REPO, tag)) !== expected.get(tag)) {
      missing.push(tag);
    }
  }
  if (!missing.length) return "present";
  const reg = http.registries[variant];
  const started = Date.now();
  const copy = (tag: string) =>
    limit(() =>
      copyImage(ctx, layout, tag, reg, BUSYBOX_REPO, { all: tag === "latest" || tag === "docker" })
    );
  // `latest --all` first moves every blob; the other tags then only add manifests, in parallel.
  if (missing.includes("latest")) await copy("latest");
  await Promise.all(missing.filter((t) => t !== "latest").map(copy));
  for (const tag of missing) {
    const got = await manifestDigest(http, variant, BUSYBOX_REPO, tag);
    if (got !== expected.get(tag)) {
      throw new Error(
        `after the push, ${reg.host}/${BUSYBOX_REPO}:${tag} is ${got ?? "missing"}, expected ${
          expected.get(tag)
        }`,
      );
    }
  }
  log(
    `pushed ${missing.length} tag(s) to ${variant} (${reg.host}) in ${
      Date.now() - started
    } ms with ${pusher()}`,
  );
  return "pushed";
}
