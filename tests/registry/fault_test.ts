/**
 * Fault tests of our push path: scripts/fault_proxy.ts sits in front of the test bed's real
 * registries (distribution 2.8) and injects 5xx bursts, 429 with Retry-After, dropped
 * connections mid-upload (monolithic PUT and chunked PATCH), slow responses and a Bearer token
 * that expires mid-push. The same image (random gzip layers built here in an OCI layout) is
 * pushed each time, with `copyImage` into a `RegistrySession` repository or with `cli.ts copy`.
 *
 * Each push must either succeed with the manifest digest of the fault-free run, or fail with a
 * `KanikoError` whose message is one line (CLI: exactly one `error:` line). Either way, no tag
 * may point at a manifest whose blobs are missing: every blob of the tagged manifest is HEADed
 * directly against the registry, bypassing the proxy. Retries must be bounded and 4xx answers
 * never retried (the proxy counts requests).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { describeError, KanikoError } from "../../lib/errors.ts";
import { configureLog, resetLog } from "../../lib/log.ts";
import { canonicalJson } from "../../lib/oci/canonical_json.ts";
import { copyImage } from "../../lib/oci/copy.ts";
import { digestOf, HashingStream } from "../../lib/oci/digest.ts";
import { OciLayout } from "../../lib/oci/layout.ts";
import { OCI } from "../../lib/oci/media_types.ts";
import type { Descriptor } from "../../lib/oci/schemas.ts";
import { defaultRegistryOptions, type RegistryOptions } from "../../lib/registry/options.ts";
import { parseReference } from "../../lib/registry/reference.ts";
import { RegistrySession } from "../../lib/registry/session.ts";
import { Transport } from "../../lib/registry/transport.ts";
import { createTarStream } from "../../lib/tar/mod.ts";
import {
  type FaultProxy,
  type FaultRule,
  type RequestLogEntry,
  startFaultProxy,
} from "../../scripts/fault_proxy.ts";
import { gzip } from "../oci/image_fixture.ts";
import { regFetch, type RegistryInfo, testbed, type TestbedEnv } from "../_testbed.ts";

const OPTS = { sanitizeOps: false, sanitizeResources: false };
const MiB = 1024 * 1024;
const ROOT = new URL("../..", import.meta.url).pathname;
const TAG = "v1";
/** Layer sizes (random, so gzip keeps them about this big). */
const LAYER_SIZES = [3 * MiB, 2 * MiB, MiB];
const BLOB_PUT = "^/v2/.+/blobs/uploads/.+";
const BLOB_HEAD = "^/v2/.+/blobs/sha256:[a-f0-9]+$";
const MANIFEST = "^/v2/.+/manifests/.+";
/** A chunked upload's second 1 MiB PATCH. */
const SECOND_CHUNK = { "content-range": `^${MiB}-` };

// ---------------------------------------------------------------------------------------------
// The image: an OCI layout with three random gzip layers, built once per run.

interface Fixture {
  dir: string;
  layout: OciLayout;
  digest: string;
  blobs: Descriptor[];
}

let fixture: Promise<Fixture> | undefined;

function image(): Promise<Fixture> {
  fixture ??= buildFixture();
  return fixture;
}

async function buildFixture(): Promise<Fixture> {
  const dir = await Deno.makeTempDir({ prefix: "kaniko-fault-" });
  globalThis.addEventListener("unload", () => {
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch {
      // already gone
    }
  });
  const layout = await OciLayout.open(dir, { create: true });
  const layers: Descriptor[] = [];
  const diffIds: string[] = [];
  for (const [i, size] of LAYER_SIZES.entries()) {
    const data = randomBytes(size);
    const plain = new HashingStream();
    const tar = createTarStream([{
      header: { name: `data${i}.bin`, type: "file", mode: 0o644, mtime: 1700000000_000000000n },
      body: data,
    }]);
    const { digest, size: gzSize } = await layout.writeBlob(gzip(tar.pipeThrough(plain)));
    layers.push({ mediaType: OCI.layerGzip, digest, size: gzSize });
    diffIds.push(plain.digest());
  }
  const configBytes = canonicalJson({
    architecture: "amd64",
    os: "linux",
    created: "2024-01-01T00:00:00Z",
    config: { Cmd: ["/bin/sh"] },
    rootfs: { type: "layers", diff_ids: diffIds },
  });
  const config = await layout.writeBlob(configBytes);
  const configDesc = { mediaType: OCI.config, digest: config.digest, size: config.size };
  const bytes = canonicalJson({
    schemaVersion: 2,
    mediaType: OCI.manifest,
    config: configDesc,
    layers,
  });
  const manifest = { bytes, mediaType: OCI.manifest, digest: digestOf(bytes) };
  await layout.putManifest(manifest, TAG);
  return { dir, layout, digest: manifest.digest, blobs: [configDesc, ...layers] };
}

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Pushing through the proxy, and checking the registry behind it.

/** The outcome of one push. */
interface Outcome {
  digest?: string;
  error?: unknown;
  ms: number;
  /** Log lines written during the push (info and above). */
  logs: string[];
}

let repoCounter = 0;

/** A repository name no earlier run used, so every blob really moves. */
function freshRepo(label: string): string {
  const rand = crypto.randomUUID().slice(0, 8);
  return `fault/${label.toLowerCase().replace(/[^a-z0-9]+/g, "-")}-${++repoCounter}-${rand}`;
}

/** Pushes the fixture with the library API to `proxy` (`repo:v1`). */
async function pushLib(
  proxy: FaultProxy,
  repo: string,
  options: Partial<RegistryOptions> = {},
  transport?: Transport,
): Promise<Outcome> {
  const { layout } = await image();
  const session = new RegistrySession({
    ...defaultRegistryOptions(),
    pushRetryInitialDelay: 50,
    pushRetryMaxDelay: 400,
    ...options,
  }, transport);
  const logs: string[] = [];
  configureLog({ level: "info", format: "text" }, { write: (line) => logs.push(line) });
  const t0 = performance.now();
  try {
    const sink = session.repository(parseReference(`${proxy.host}/${repo}:${TAG}`), "push");
    const result = await copyImage(layout, sink, {
      ref: TAG,
      tags: [TAG],
      concurrency: options.concurrency ?? 4,
    });
    return { digest: result.manifest.digest, ms: performance.now() - t0, logs };
  } catch (error) {
    return { error, ms: performance.now() - t0, logs };
  } finally {
    session.close();
    resetLog();
  }
}

/** Raw access to a registry, bypassing the proxy (with the test bed's credentials). */
function direct(env: TestbedEnv, registry: RegistryInfo, path: string, method = "GET") {
  return regFetch(env, registry, path, {
    method,
    headers: { accept: [OCI.manifest, OCI.index].join(", ") },
  });
}

/**
 * Asserts that the tag, if present, names a complete image: the fault-free digest, and every
 * blob present with its size (HEAD against the registry itself). Returns the tagged digest.
 */
async function assertConsistent(
  env: TestbedEnv,
  registry: RegistryInfo,
  repo: string,
): Promise<string | undefined> {
  const res = await direct(env, registry, `/v2/${repo}/manifests/${TAG}`);
  if (res.status === 404) return undefined;
  assert.equal(res.status, 200, `GET manifest ${repo}:${TAG}: ${res.text()}`);
  const digest = "sha256:" + createHash("sha256").update(res.body).digest("hex");
  const manifest = res.json() as { config: Descriptor; layers: Descriptor[] };
  for (const d of [manifest.config, ...manifest.layers]) {
    const head = await direct(env, registry, `/v2/${repo}/blobs/${d.digest}`, "HEAD");
    assert.equal(head.status, 200, `${repo}:${TAG} points at missing blob ${d.digest}`);
    assert.equal(Number(head.headers.get("content-length")), d.size, `size of ${d.digest}`);
  }
  assert.equal(digest, (await image()).digest, "the tag points at the fault-free manifest");
  return digest;
}

/** Asserts the outcome is a success with the fault-free digest. */
async function assertSuccess(outcome: Outcome): Promise<void> {
  if (outcome.error) {
    throw new assert.AssertionError({
      message: `push failed: ${describeError(outcome.error)}\n${outcome.logs.join("\n")}`,
    });
  }
  assert.equal(outcome.digest, (await image()).digest);
}

/** Asserts the outcome is a failure reported as a one-line KanikoError; returns the line. */
function assertCleanFailure(outcome: Outcome): string {
  assert.ok(outcome.error, "the push was expected to fail");
  const err = outcome.error;
  assert.ok(err instanceof KanikoError, `not a KanikoError: ${String(err)}`);
  const line = describeError(err);
  assert.ok(!/[\r\n]/.test(err.message), `message is not one line: ${JSON.stringify(err.message)}`);
  assert.ok(line.length > 0 && line.length < 600, `message length ${line.length}`);
  assert.ok(!/\bat .+:\d+:\d+/.test(line), `message carries a stack trace: ${line}`);
  return line;
}

/** Requests in the proxy log matching method and path. */
function requests(proxy: FaultProxy, method: string, path: RegExp): RequestLogEntry[] {
  return proxy.stats().log.filter((e) => e.method === method && path.test(e.path));
}

/** Runs `fn` with a proxy in front of `registry`, stopped afterwards. */
async function withProxy<T>(
  registry: RegistryInfo,
  rules: FaultRule[],
  fn: (proxy: FaultProxy) => Promise<T>,
): Promise<T> {
  const env = await testbed();
  const proxy = await startFaultProxy(registry.url, rules, {
    caFile: registry.tls ? env.ca : undefined,
  });
  try {
    return await fn(proxy);
  } finally {
    await proxy.stop();
  }
}

/** One library-API fault case against the plain registry. */
interface Case {
  name: string;
  rules: FaultRule[];
  options?: Partial<RegistryOptions>;
  headersTimeout?: number;
  /** The test-bed registry behind the proxy (default `plain`). */
  registry?: "plain" | "tls";
  /** `success`, `failure`, or either (both must be clean). */
  expect: "success" | "failure" | "either";
  /** Extra checks on the proxy counters and the outcome. */
  check?: (proxy: FaultProxy, outcome: Outcome) => void | Promise<void>;
}

function faultCase(c: Case) {
  Deno.test(`fault: ${c.name}`, OPTS, async () => {
    const env = await testbed();
    await image();
    const registry = env.registries[c.registry ?? "plain"];
    const repo = freshRepo(c.name);
    await withProxy(registry, c.rules, async (proxy) => {
      const transport = c.headersTimeout
        ? new Transport({ headersTimeout: c.headersTimeout })
        : undefined;
      const outcome = await pushLib(proxy, repo, c.options, transport);
      const tagged = await assertConsistent(env, registry, repo);
      if (c.expect === "success") await assertSuccess(outcome);
      else if (c.expect === "failure") assertCleanFailure(outcome);
      else if (outcome.error) assertCleanFailure(outcome);
      else await assertSuccess(outcome);
      if (!outcome.error) assert.equal(tagged, outcome.digest, "the tag is written on success");
      const faulted = proxy.stats().rules.reduce((n, r) => n + r.faulted, 0);
      if (c.rules.length > 0) assert.ok(faulted > 0, "the fault was injected");
      await c.check?.(proxy, outcome);
    });
  });
}

const RETRY3 = { pushRetry: 3 };

// ---------------------------------------------------------------------------------------------
// Library API: the fault-free run, then one fault at a time.

faultCase({
  name: "no fault",
  rules: [],
  expect: "success",
  check: async (proxy) => {
    // Every blob is uploaded once, by one monolithic PUT.
    const puts = requests(proxy, "PUT", /\/blobs\/uploads\//);
    assert.equal(puts.length, (await image()).blobs.length);
  },
});

faultCase({
  name: "503 burst on blob PUT",
  rules: [{ id: "put", method: "PUT", path: BLOB_PUT, status: 503, count: 2 }],
  options: RETRY3,
  expect: "success",
});

faultCase({
  name: "503 on every second blob PUT",
  rules: [{ id: "put", method: "PUT", path: BLOB_PUT, status: 503, every: 2 }],
  options: RETRY3,
  expect: "success",
});

faultCase({
  name: "503 burst and a reset in front of the TLS registry",
  registry: "tls",
  rules: [
    { id: "put", method: "PUT", path: BLOB_PUT, status: 503, count: 2 },
    { id: "reset", method: "PUT", path: BLOB_PUT, reset: { request: MiB }, count: 1 },
  ],
  options: RETRY3,
  expect: "success",
  check: (proxy) => assert.deepEqual(proxy.stats().rules.map((r) => r.faulted), [2, 1]),
});

faultCase({
  name: "503 burst on chunked PATCH",
  // The first PATCH of each of two uploads fails: the registry holds 0 bytes of them, and
  // answers the status query with `Range: 0-0`.
  rules: [{ id: "patch", method: "PATCH", status: 503, count: 2 }],
  options: { ...RETRY3, uploadChunkSize: MiB },
  expect: "success",
  check: async (proxy, outcome) => {
    assert.equal(proxy.stats().rules[0].faulted, 2);
    // `Range: 0-0` is what distribution answers for an empty upload: resuming at byte 1 would
    // drop the blob's first byte (a registry that honours Content-Range answers 416 for ever).
    const resumes = outcome.logs.filter((l) => /resuming upload .* at byte [1-9]/.test(l));
    assert.deepEqual(resumes, [], "resumed past bytes the registry does not hold");
    // Nothing was lost: both uploads resume in their own sessions, with no new POST.
    const posts = requests(proxy, "POST", /\/blobs\/uploads\/$/);
    assert.equal(posts.length, (await image()).blobs.length, "no upload had to start again");
  },
});

faultCase({
  name: "503 on a later chunked PATCH",
  // The PATCH of bytes 1-2 MiB of one layer fails before reaching the registry, which holds
  // exactly the first MiB: the upload resumes from its Range.
  rules: [{ id: "patch", method: "PATCH", matchHeaders: SECOND_CHUNK, status: 503, count: 1 }],
  options: { ...RETRY3, uploadChunkSize: MiB },
  expect: "success",
  check: (proxy) => {
    assert.equal(proxy.stats().rules[0].faulted, 1);
    assert.equal(requests(proxy, "GET", /\/blobs\/uploads\//).length, 1, "one status query");
  },
});

faultCase({
  name: "503 burst on blob HEAD",
  rules: [{ id: "head", method: "HEAD", path: BLOB_HEAD, status: 503, count: 2 }],
  options: RETRY3,
  expect: "success",
});

faultCase({
  name: "503 burst on manifest PUT",
  rules: [{ id: "manifest", method: "PUT", path: MANIFEST, status: 503, count: 2 }],
  options: RETRY3,
  expect: "success",
  check: (proxy) =>
    assert.deepEqual(proxy.stats().rules[0], { id: "manifest", matched: 3, faulted: 2 }),
});

faultCase({
  name: "503 burst on upload POST",
  rules: [{ id: "post", method: "POST", status: 503, count: 2 }],
  options: RETRY3,
  expect: "success",
});

faultCase({
  name: "429 with Retry-After on blob PUT",
  rules: [{ id: "429", method: "PUT", path: BLOB_PUT, status: 429, retryAfter: 1, count: 1 }],
  options: RETRY3,
  expect: "success",
  check: (_proxy, outcome) => {
    // Retry-After: 1 outweighs the 50 ms backoff.
    assert.ok(outcome.ms >= 1000, `push took ${outcome.ms.toFixed(0)} ms; Retry-After ignored?`);
  },
});

faultCase({
  name: "429 with Retry-After on manifest PUT",
  rules: [{ id: "429", method: "PUT", path: MANIFEST, status: 429, retryAfter: 1, count: 1 }],
  options: RETRY3,
  expect: "success",
  check: (_proxy, outcome) => assert.ok(outcome.ms >= 1000),
});

faultCase({
  name: "connection reset mid monolithic PUT",
  rules: [{ id: "reset", method: "PUT", path: BLOB_PUT, reset: { request: MiB }, count: 1 }],
  options: RETRY3,
  expect: "success",
});

faultCase({
  name: "connection reset on every monolithic PUT",
  rules: [{ id: "reset", method: "PUT", path: BLOB_PUT, reset: { request: 64 * 1024 } }],
  options: { pushRetry: 2 },
  expect: "failure",
  check: async (proxy) => {
    // Bounded: at most 1 + 2 attempts per blob.
    const perBlob = countBy(requests(proxy, "PUT", /\/blobs\/uploads\//), (e) => e.digest);
    for (const [digest, n] of perBlob) assert.ok(n <= 3, `${digest}: ${n} PUTs`);
    assert.ok(perBlob.size <= (await image()).blobs.length);
  },
});

faultCase({
  name: "connection reset mid chunked PATCH",
  // The PATCH of bytes 1-2 MiB of one layer is dropped after 300 KiB went to the registry.
  rules: [{
    id: "reset",
    method: "PATCH",
    matchHeaders: SECOND_CHUNK,
    count: 1,
    reset: { request: 300 * 1024 },
  }],
  options: { ...RETRY3, uploadChunkSize: MiB },
  expect: "success",
});

faultCase({
  name: "connection reset mid chunked PATCH, no retries",
  rules: [{
    id: "reset",
    method: "PATCH",
    matchHeaders: SECOND_CHUNK,
    count: 1,
    reset: { request: 300 * 1024 },
  }],
  options: { pushRetry: 0, uploadChunkSize: MiB },
  expect: "either",
});

faultCase({
  name: "connection dropped after the registry stored a blob",
  rules: [{ id: "lost", method: "PUT", path: BLOB_PUT, reset: { response: 0 }, count: 1 }],
  options: RETRY3,
  expect: "success",
});

faultCase({
  name: "connection dropped after the registry stored the manifest",
  rules: [{ id: "lost", method: "PUT", path: MANIFEST, reset: { response: 0 }, count: 1 }],
  options: RETRY3,
  expect: "success",
});

faultCase({
  name: "slow responses",
  rules: [{ id: "slow", path: "^/v2/.+", delay: 300 }],
  options: RETRY3,
  expect: "success",
  check: (_proxy, outcome) => assert.ok(outcome.ms >= 900),
});

faultCase({
  name: "a HEAD slower than the response timeout",
  rules: [{ id: "slow", method: "HEAD", path: BLOB_HEAD, delay: 2500, count: 1 }],
  options: RETRY3,
  headersTimeout: 1000,
  expect: "success",
});

faultCase({
  name: "a blob PUT slower than the response timeout",
  rules: [{ id: "slow", method: "PUT", path: BLOB_PUT, delay: 2500, count: 1 }],
  options: RETRY3,
  headersTimeout: 1000,
  expect: "success",
});

faultCase({
  name: "503 on every blob PUT exhausts the retries",
  rules: [{ id: "put", method: "PUT", path: BLOB_PUT, status: 503 }],
  options: { pushRetry: 2 },
  expect: "failure",
  check: async (proxy, outcome) => {
    const line = describeError(outcome.error);
    assert.match(line, /503/);
    const perBlob = countBy(requests(proxy, "PUT", /\/blobs\/uploads\//), (e) => e.digest);
    for (const [digest, n] of perBlob) assert.ok(n <= 3, `${digest}: ${n} PUTs for 2 retries`);
    assert.ok(perBlob.size <= (await image()).blobs.length);
  },
});

for (const status of [400, 403]) {
  faultCase({
    name: `${status} on blob PUT is never retried`,
    rules: [{ id: "put", method: "PUT", path: BLOB_PUT, status }],
    options: { pushRetry: 3 },
    expect: "failure",
    check: (proxy, outcome) => {
      assert.match(describeError(outcome.error), new RegExp(`${status}`));
      const perBlob = countBy(requests(proxy, "PUT", /\/blobs\/uploads\//), (e) => e.digest);
      for (const [digest, n] of perBlob) assert.equal(n, 1, `${digest} was retried`);
    },
  });

  faultCase({
    name: `${status} on manifest PUT is never retried`,
    rules: [{ id: "manifest", method: "PUT", path: MANIFEST, status }],
    options: { pushRetry: 3 },
    expect: "failure",
    check: (proxy) => assert.equal(proxy.stats().rules[0].matched, 1),
  });
}

faultCase({
  name: "400 on blob HEAD is never retried",
  rules: [{ id: "head", method: "HEAD", path: BLOB_HEAD, status: 400 }],
  options: { pushRetry: 3 },
  expect: "failure",
  check: async (proxy) => {
    const perBlob = countBy(requests(proxy, "HEAD", new RegExp(BLOB_HEAD)), (e) => e.path);
    for (const [path, n] of perBlob) assert.equal(n, 1, `${path} was retried`);
    assert.ok(perBlob.size <= (await image()).blobs.length);
  },
});

Deno.test("fault: a failed push stops its other transfers", OPTS, async () => {
  const env = await testbed();
  await image();
  const repo = freshRepo("failed push stops");
  // The first blob PUT is refused for good (403, not retryable); every other blob PUT fails
  // with a 503 that the push would retry three times.
  const rules: FaultRule[] = [
    { id: "refused", method: "PUT", path: BLOB_PUT, status: 403, count: 1 },
    { id: "others", method: "PUT", path: BLOB_PUT, status: 503, delay: 200 },
  ];
  await withProxy(env.registries.plain, rules, async (proxy) => {
    const outcome = await pushLib(proxy, repo, { pushRetry: 3, pushRetryInitialDelay: 1000 });
    assert.match(assertCleanFailure(outcome), /403/);
    // Requests already on the wire when the push failed may reach the proxy's handler a little
    // later (each streamed upload opens a connection of its own through the relay); a retry
    // could not come before 500 ms (the first backoff is 500–1000 ms).
    await new Promise((r) => setTimeout(r, 300));
    const atFailure = proxy.stats().requests;
    await new Promise((r) => setTimeout(r, 2000));
    const later = proxy.stats().log.slice(atFailure).map((e) => `${e.method} ${e.path}`);
    assert.equal(await assertConsistent(env, env.registries.plain, repo), undefined);
    assert.deepEqual(later, [], "requests were still sent after the push had failed");
  });
});

// ---------------------------------------------------------------------------------------------
// Token expiry mid-push, against the token-auth registry.

/** A Docker config dir whose `auths` has the test credentials for `host`. */
async function dockerConfigFor(env: TestbedEnv, host: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "kaniko-fault-docker-" });
  const auth = btoa(`${env.user}:${env.pass}`);
  await Deno.writeTextFile(
    join(dir, "config.json"),
    JSON.stringify({ auths: { [host]: { auth } } }),
  );
  return dir;
}

for (
  const variant of [
    // Each token serves 6 requests, then is refused with distribution's 401 for an expired
    // token. Without retries, only the one free replay after a refresh is left: one blob at a
    // time, so that no other upload spends the fresh token's uses before the replay (with 4 in
    // flight they sometimes did, and the replay met an expired token again).
    { name: "after 6 uses", expiry: { afterRequests: 6 }, drain: true, options: RETRY3 },
    {
      name: "after 6 uses, no retries",
      expiry: { afterRequests: 6 },
      drain: true,
      options: { concurrency: 1 },
    },
    {
      name: "after 6 uses, body not read",
      expiry: { afterRequests: 6 },
      drain: false,
      options: RETRY3,
    },
    {
      name: "after 400 ms, chunked",
      expiry: { afterMs: 400 },
      drain: true,
      options: { ...RETRY3, uploadChunkSize: MiB },
      delay: 150,
    },
  ]
) {
  Deno.test(`fault: token expires mid-push ${variant.name}`, OPTS, async () => {
    const env = await testbed();
    await image();
    const registry = env.registries.token;
    const repo = freshRepo(`token ${variant.name}`);
    const rules: FaultRule[] = [{
      id: "expire",
      path: "^/v2/.+",
      expireToken: variant.expiry,
      drain: variant.drain,
    }];
    if (variant.delay) rules.push({ id: "slow", path: "^/v2/.+", delay: variant.delay });
    await withProxy(registry, rules, async (proxy) => {
      const config = await dockerConfigFor(env, proxy.host);
      try {
        const outcome = await pushLib(proxy, repo, { ...variant.options, dockerConfigDir: config });
        await assertConsistent(env, registry, repo);
        assert.ok(proxy.stats().rules[0].faulted > 0, "a token expired during the push");
        await assertSuccess(outcome);
      } finally {
        await Deno.remove(config, { recursive: true });
      }
    });
  });
}

for (const pushRetry of [0, 3]) {
  Deno.test(
    `fault: token expires right before a blob PUT, --push-retry ${pushRetry}`,
    OPTS,
    async () => {
      const env = await testbed();
      await image();
      const registry = env.registries.token;
      const repo = freshRepo(`token before put ${pushRetry}`);
      // The token that served one blob PUT is refused on the next one (once): the 401 answers
      // a request whose streamed body cannot be replayed.
      const rules: FaultRule[] = [{
        id: "expire",
        method: "PUT",
        path: BLOB_PUT,
        expireToken: { afterRequests: 1 },
        count: 1,
      }];
      await withProxy(registry, rules, async (proxy) => {
        const config = await dockerConfigFor(env, proxy.host);
        try {
          const outcome = await pushLib(proxy, repo, { pushRetry, dockerConfigDir: config });
          await assertConsistent(env, registry, repo);
          assert.equal(proxy.stats().rules[0].faulted, 1, "a token expired before a PUT");
          await assertSuccess(outcome);
          const retries = outcome.logs.filter((l) => /retrying/.test(l));
          assert.deepEqual(retries, [], "a refreshed token needs no retry");
        } finally {
          await Deno.remove(config, { recursive: true });
        }
      });
    },
  );
}

// ---------------------------------------------------------------------------------------------
// The CLI: bounded retries, one error line.

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

async function cliCopy(proxy: FaultProxy, repo: string, flags: string[]): Promise<CliResult> {
  const { dir } = await image();
  const t0 = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      join(ROOT, "cli.ts"),
      "copy",
      `oci:${dir}:${TAG}`,
      `${proxy.host}/${repo}:${TAG}`,
      "--push-retry-initial-delay=50",
      "--push-retry-max-delay=400",
      "--log-format=text",
      ...flags,
    ],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
    ms: performance.now() - t0,
  };
}

function lines(text: string): string[] {
  return text.split("\n").filter((l) => l.trim() !== "");
}

Deno.test("cli: --push-retry 0 fails fast on a 503 with one error line", OPTS, async () => {
  const env = await testbed();
  const repo = freshRepo("cli retry0");
  const rules = [{ id: "put", method: "PUT", path: BLOB_PUT, status: 503, count: 1 }];
  await withProxy(env.registries.plain, rules, async (proxy) => {
    const r = await cliCopy(proxy, repo, ["--push-retry=0"]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, "");
    const err = lines(r.stderr);
    assert.equal(err.length, 1, `stderr:\n${r.stderr}`);
    assert.match(err[0], /^error: .*503/);
    assert.ok(r.ms < 10_000, `took ${r.ms.toFixed(0)} ms`);
    assert.equal(proxy.stats().rules[0].faulted, 1);
    const faulted = proxy.stats().log.find((e) => e.fault === "put")!;
    const puts = requests(proxy, "PUT", /\/blobs\/uploads\//);
    assert.equal(puts.filter((e) => e.digest === faulted.digest).length, 1, "no retry");
    await assertConsistent(env, env.registries.plain, repo);
  });
});

Deno.test("cli: --push-retry 3 rides out a burst of two 503s", OPTS, async () => {
  const env = await testbed();
  const repo = freshRepo("cli retry3");
  const rules = [{ id: "put", method: "PUT", path: BLOB_PUT, status: 503, count: 2 }];
  await withProxy(env.registries.plain, rules, async (proxy) => {
    const r = await cliCopy(proxy, repo, ["--push-retry=3"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), (await image()).digest);
    assert.equal(lines(r.stderr).filter((l) => l.startsWith("error")).length, 0);
    assert.equal(proxy.stats().rules[0].faulted, 2);
    assert.equal(await assertConsistent(env, env.registries.plain, repo), (await image()).digest);
  });
});

Deno.test("cli: --push-retry 1 gives up after two 503s on the manifest", OPTS, async () => {
  const env = await testbed();
  const repo = freshRepo("cli retry1");
  const rules = [{ id: "manifest", method: "PUT", path: MANIFEST, status: 503 }];
  await withProxy(env.registries.plain, rules, async (proxy) => {
    const r = await cliCopy(proxy, repo, ["--push-retry=1"]);
    assert.equal(r.code, 1, r.stderr);
    const errors = lines(r.stderr).filter((l) => /^error\b/i.test(l));
    assert.equal(errors.length, 1, r.stderr);
    assert.match(errors[0], /^error: .*manifest.*503/);
    assert.equal(proxy.stats().rules[0].matched, 2, "one try and one retry");
    assert.equal(await assertConsistent(env, env.registries.plain, repo), undefined);
  });
});

Deno.test("cli: a 403 is never retried", OPTS, async () => {
  const env = await testbed();
  const repo = freshRepo("cli 403");
  const rules = [{ id: "manifest", method: "PUT", path: MANIFEST, status: 403 }];
  await withProxy(env.registries.plain, rules, async (proxy) => {
    const r = await cliCopy(proxy, repo, ["--push-retry=3"]);
    assert.equal(r.code, 1, r.stderr);
    const err = lines(r.stderr);
    assert.equal(err.length, 1, r.stderr);
    assert.match(err[0], /^error: .*403/);
    assert.equal(proxy.stats().rules[0].matched, 1);
    assert.equal(await assertConsistent(env, env.registries.plain, repo), undefined);
  });
});

Deno.test("cli: connection reset mid chunked upload", OPTS, async () => {
  const env = await testbed();
  const repo = freshRepo("cli chunked reset");
  const rules = [{
    id: "reset",
    method: "PATCH",
    matchHeaders: SECOND_CHUNK,
    count: 1,
    reset: { request: 300_000 },
  }];
  await withProxy(env.registries.plain, rules, async (proxy) => {
    const r = await cliCopy(proxy, repo, ["--push-retry=3", "--upload-chunk-size=1MiB"]);
    const tagged = await assertConsistent(env, env.registries.plain, repo);
    assert.equal(proxy.stats().rules[0].faulted, 1);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), (await image()).digest);
    assert.equal(tagged, (await image()).digest);
  });
});

function countBy<T>(items: T[], key: (t: T) => string | undefined): Map<string, number> {
  const out = new Map<string, number>();
  for (const item of items) {
    const k = key(item) ?? "?";
    out.set(k, (out.get(k) ?? 0) + 1);
  }
  return out;
}
