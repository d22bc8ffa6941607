/**
 * Pushing the busybox layout to the registries, with our own client (the library the CLI's
 * `copy` runs: {@link copyImage}), in this process.
 * @module
 */
import { copyImage as copyToSink } from "../../lib/oci/copy.ts";
import { OciLayout } from "../../lib/oci/layout.ts";
import { defaultRegistryOptions } from "../../lib/registry/options.ts";
import { parseReference } from "../../lib/registry/reference.ts";
import { RegistrySession } from "../../lib/registry/session.ts";
import { BUSYBOX_REPO, type RegistryInfo } from "./env.ts";
import { type HttpEnv, manifestDigest } from "./http.ts";
import type { BuildResult } from "./busybox.ts";

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
 * Copies `oci:<layout>:<tag>` to `<registry>/<repo>:<tag>` (every child with `all`) with the
 * settings those CLI flags give: plain HTTP hosts as insecure registries, the test CA as the
 * host's certificate, credentials from the test bed's Docker config.
 */
export async function copyImage(
  ctx: PushContext,
  layout: string,
  tag: string,
  reg: RegistryInfo,
  repo: string,
  opts: { all: boolean },
): Promise<void> {
  const session = new RegistrySession({
    ...defaultRegistryOptions(),
    dockerConfigDir: ctx.dockerConfigDir,
    insecureRegistries: reg.tls ? [] : [reg.host],
    registryCertificates: reg.tls ? { [reg.host]: ctx.ca } : {},
  });
  try {
    const sink = session.repository(parseReference(`${reg.host}/${repo}:${tag}`), "push");
    await copyToSink(await OciLayout.open(layout), sink, { ref: tag, tags: [tag], all: opts.all });
  } finally {
    session.close();
  }
}

/** Copies at once, over all registries. */
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
  // `latest --all` first moves every blob, then `docker --all` its v2s2 children; the other tags
  // then only add tags to manifests already there, in parallel. (Two concurrent PUTs of the same
  // new manifest race inside distribution 2.8's filesystem driver: a list pushed meanwhile can
  // fail with DIGEST_INVALID + MANIFEST_BLOB_UNKNOWN.)
  const first = ["latest", "docker"];
  for (const tag of first) if (missing.includes(tag)) await copy(tag);
  await Promise.all(missing.filter((t) => !first.includes(t)).map(copy));
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
    `pushed ${missing.length} tag(s) to ${variant} (${reg.host}) in ${Date.now() - started} ms`,
  );
  return "pushed";
}
