/**
 * The test bed itself: the four registries behave as configured, the token server speaks the
 * Docker token protocol, skopeo (an independent client) reads the pushed busybox images, the
 * index has the six platforms, each layer's bin/busybox is an ELF of its machine, and the image
 * build is reproducible.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createHash } from "node:crypto";
import {
  fetchAll,
  fetchToken,
  MANIFEST_ACCEPT,
  parseChallenge,
  regFetch,
  remoteDigest,
  skopeo,
  startExtraRegistry,
  tempDir,
  testbed,
  VARIANTS,
} from "./_testbed.ts";
import { buildBusyboxLayout, cachedDeb } from "../scripts/testbed/busybox.ts";
import { ARCHES } from "../scripts/testbed/env.ts";
import { livePid, procCmdline, run, sleep, stopService } from "../scripts/testbed/proc.ts";

const sha256 = (b: Uint8Array | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

function decodeJwt(token: string): { header: any; claims: any } {
  const [h, c, s] = token.split(".");
  assert(s && s.length > 0, "JWT has a signature");
  const dec = (x: string) => JSON.parse(atob(x.replace(/-/g, "+").replace(/_/g, "/")));
  return { header: dec(h), claims: dec(c) };
}

Deno.test("testbed: plain registry answers /v2/ with 200 over HTTP", async () => {
  const env = await testbed();
  const r = await fetchAll(`${env.registries.plain.url}/v2/`);
  assert.deepEqual(r.status, 200);
  assert.deepEqual(r.headers.get("docker-distribution-api-version"), "registry/2.0");
});

Deno.test("testbed: tls registry needs the test CA", async () => {
  const env = await testbed();
  await assert.rejects(() => fetchAll(`${env.registries.tls.url}/v2/`));
  const r = await fetchAll(`${env.registries.tls.url}/v2/`, {}, env.ca);
  assert.deepEqual(r.status, 200);
});

Deno.test("testbed: basic registry is 401 without credentials, 200 with them", async () => {
  const env = await testbed();
  const anon = await regFetch(env, "basic", "/v2/", { creds: false });
  assert.deepEqual(anon.status, 401);
  assert.deepEqual(anon.headers.get("www-authenticate"), 'Basic realm="testbed-realm"');
  assert.deepEqual(anon.json().errors[0].code, "UNAUTHORIZED");
  const bad = await fetchAll(`${env.registries.basic.url}/v2/`, {
    headers: { authorization: `Basic ${btoa(`${env.user}:wrong`)}` },
  }, env.ca);
  assert.deepEqual(bad.status, 401);
  assert.deepEqual((await regFetch(env, "basic", "/v2/")).status, 200);
});

Deno.test("testbed: token registry challenges with Bearer; tokens are RS256 JWTs with x5c", async () => {
  const env = await testbed();
  const r = await regFetch(env, "token", "/v2/", { creds: false, headers: {} });
  // regFetch answered the challenge anonymously: /v2/ needs no scope, so the token is enough.
  assert.deepEqual(r.status, 200);
  const raw = await fetchAll(`${env.registries.token.url}/v2/`);
  assert.deepEqual(raw.status, 401);
  const ch = parseChallenge(raw.headers.get("www-authenticate"));
  assert.deepEqual(ch?.scheme, "bearer");
  assert.deepEqual(ch?.params.realm, env.tokenServer.realm);
  assert.deepEqual(ch?.params.service, env.tokenServer.service);

  const tok = await fetchToken(ch!.params, "repository:library/busybox:pull,push", env);
  assert.deepEqual(tok.status, 200);
  const body = tok.json();
  assert.deepEqual(body.token, body.access_token);
  assert.deepEqual(body.expires_in, env.tokenServer.ttl);
  const { header, claims } = decodeJwt(body.token);
  assert.deepEqual(header.alg, "RS256");
  assert(Array.isArray(header.x5c) && header.x5c.length === 1);
  assert.deepEqual(claims.iss, env.tokenServer.issuer);
  assert.deepEqual(claims.aud, env.tokenServer.service);
  assert.deepEqual(claims.sub, env.user);
  assert.deepEqual(claims.exp - claims.iat, env.tokenServer.ttl);
  assert.deepEqual(claims.access, [
    { type: "repository", name: "library/busybox", actions: ["pull", "push"] },
  ]);
  const ok = await fetchAll(`${env.registries.token.url}/v2/`, {
    headers: { authorization: `Bearer ${body.token}` },
  });
  assert.deepEqual(ok.status, 200);
});

Deno.test("testbed: token server grants anonymous pull only; anonymous push is denied", async () => {
  const env = await testbed();
  const anon = await regFetch(env, "token", "/v2/library/busybox/manifests/latest", {
    creds: false,
    headers: { accept: MANIFEST_ACCEPT },
  });
  assert.deepEqual(anon.status, 200);
  assert.deepEqual(sha256(anon.body), env.busybox.indexDigest);
  const push = await regFetch(env, "token", "/v2/testbed/anon/blobs/uploads/", {
    method: "POST",
    creds: false,
    scope: "repository:testbed/anon:pull,push",
  });
  assert.deepEqual(push.status, 401);
  const t = await fetchToken(
    { realm: env.tokenServer.realm, service: env.tokenServer.service },
    "repository:testbed/anon:pull,push",
    undefined,
  );
  assert.deepEqual(decodeJwt(t.json().token).claims.access[0].actions, ["pull"]);
  // Authenticated: the upload session opens.
  const authed = await regFetch(env, "token", "/v2/testbed/authed/blobs/uploads/", {
    method: "POST",
    scope: "repository:testbed/authed:pull,push",
  });
  assert.deepEqual(authed.status, 202);
  // The other tests push many repositories: page through the catalog (`n` at most 1000).
  const repositories: string[] = [];
  for (let last = "";;) {
    const catalog = await regFetch(env, "token", `/v2/_catalog?n=1000&last=${last}`, {
      scope: "registry:catalog:*",
    });
    assert.deepEqual(catalog.status, 200);
    const page: string[] = catalog.json().repositories;
    repositories.push(...page);
    if (page.length < 1000) break;
    last = page.at(-1)!;
  }
  assert(repositories.includes("library/busybox"));
  const bad = await fetchToken(
    { realm: env.tokenServer.realm, service: env.tokenServer.service },
    "repository:library/busybox:pull",
    { user: env.user, pass: "wrong" },
  );
  assert.deepEqual(bad.status, 401);
  assert.deepEqual(bad.json().errors[0].code, "UNAUTHORIZED");
});

Deno.test("testbed: token server OAuth2 password and refresh_token grants", async () => {
  const env = await testbed();
  const post = (form: Record<string, string>) =>
    fetchAll(env.tokenServer.realm, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(form).toString(),
    });
  const base = { service: env.tokenServer.service, client_id: "testbed-test" };
  const pw = await post({
    ...base,
    grant_type: "password",
    username: env.user,
    password: env.pass,
    access_type: "offline",
    scope: "repository:a/b:pull,push",
  });
  assert.deepEqual(pw.status, 200);
  const refresh = pw.json().refresh_token;
  assert.match(refresh, /^[A-Za-z0-9_-]{20,}$/);
  assert.deepEqual(pw.json().scope, "repository:a/b:pull,push");
  const rt = await post({
    ...base,
    grant_type: "refresh_token",
    refresh_token: refresh,
    scope: "repository:a/b:pull",
  });
  assert.deepEqual(rt.status, 200);
  assert.deepEqual(decodeJwt(rt.json().access_token).claims.sub, env.user);
  const wrong = await post({ ...base, grant_type: "password", username: env.user, password: "x" });
  assert.deepEqual(wrong.status, 401);
  const unknown = await post({ ...base, grant_type: "refresh_token", refresh_token: "nope" });
  assert.deepEqual(unknown.status, 401);
  // Per-request lifetime, by query parameter or by realm path.
  const q = await fetchAll(`${env.tokenServer.realm}?service=${env.tokenServer.service}&ttl=7`);
  assert.deepEqual(q.json().expires_in, 7);
  const p = await fetchAll(`${env.tokenServer.url}/ttl/9/token?service=${env.tokenServer.service}`);
  const c = decodeJwt(p.json().token).claims;
  assert.deepEqual(c.exp - c.iat, 9);
});

Deno.test("testbed: an extra token registry with short-lived tokens refuses them once expired", async () => {
  const env = await testbed();
  // distribution 2.8 allows 60 s of leeway after exp: ttl -57 → refused ~3 s after issue.
  await using reg = await startExtraRegistry(env, { auth: "token", tokenTtl: -57 });
  const raw = await fetchAll(`${reg.info.url}/v2/`);
  const ch = parseChallenge(raw.headers.get("www-authenticate"))!;
  assert.deepEqual(ch.params.realm, `${env.tokenServer.url}/ttl/-57/token`);
  const token = (await fetchToken(ch.params, undefined, env)).json().token;
  const get = () =>
    fetchAll(`${reg.info.url}/v2/`, { headers: { authorization: `Bearer ${token}` } });
  assert.deepEqual((await get()).status, 200);
  const end = Date.now() + 10_000;
  let status = 200;
  while (status === 200 && Date.now() < end) {
    await sleep(250);
    status = (await get()).status;
  }
  assert.deepEqual(status, 401);
});

Deno.test("testbed: skopeo reads library/busybox:latest from every registry", async () => {
  const env = await testbed();
  await Promise.all(VARIANTS.map(async (v) => {
    const host = env.registries[v].host;
    const r = await skopeo(["inspect", "--raw", `docker://${host}/library/busybox:latest`], {
      env,
      variant: v,
    });
    assert.deepEqual(r.code, 0, `${v}: ${r.stderr}`);
    assert.deepEqual(sha256(r.stdout), env.busybox.indexDigest, v);
    const arm = await skopeo([
      "inspect",
      "--override-arch=arm",
      "--override-variant=v7",
      "--format={{.Architecture}}",
      `docker://${host}/library/busybox:latest`,
    ], { env, variant: v });
    assert.deepEqual(arm.stdout.trim(), "arm", `${v}: ${arm.stderr}`);
  }));
  // Without the CA, or without credentials, skopeo fails.
  const noCa = await skopeo([
    "inspect",
    "--raw",
    `docker://${env.registries.tls.host}/library/busybox:latest`,
  ], {
    env,
  });
  assert.notEqual(noCa.code, 0);
  const noCreds = await skopeo(
    ["inspect", "--raw", `docker://${env.registries.basic.host}/library/busybox:latest`],
    { env, variant: "basic", creds: false },
  );
  assert.notEqual(noCreds.code, 0);
});

Deno.test("testbed: every registry serves every tag with the expected digest", async () => {
  const env = await testbed();
  const expected: Record<string, string> = {
    latest: env.busybox.indexDigest,
    docker: env.busybox.dockerListDigest,
    "amd64-docker": env.busybox.arches.find((a) => a.tag === "amd64")!.dockerDigest,
  };
  for (const a of env.busybox.arches) expected[a.tag] = a.digest;
  assert.deepEqual(Object.keys(expected).sort(), [...env.busybox.tags].sort());
  for (const v of VARIANTS) {
    for (const [tag, digest] of Object.entries(expected)) {
      assert.deepEqual(await remoteDigest(env, v, "library/busybox", tag), digest, `${v} ${tag}`);
    }
  }
});

Deno.test("testbed: the index has the six platforms; the Docker list mirrors it", async () => {
  const env = await testbed();
  const get = async (tag: string) => {
    const r = await regFetch(env, "plain", `/v2/library/busybox/manifests/${tag}`, {
      headers: { accept: MANIFEST_ACCEPT },
    });
    assert.deepEqual(r.status, 200);
    return { json: r.json(), type: r.headers.get("content-type"), digest: sha256(r.body) };
  };
  const index = await get("latest");
  assert.deepEqual(index.type, "application/vnd.oci.image.index.v1+json");
  const platforms = index.json.manifests.map((m: any) =>
    [m.platform.os, m.platform.architecture, m.platform.variant].filter(Boolean).join("/")
  );
  assert.deepEqual(platforms, [
    "linux/amd64",
    "linux/arm64/v8",
    "linux/arm/v7",
    "linux/386",
    "linux/ppc64le",
    "linux/s390x",
  ]);
  for (const m of index.json.manifests) {
    assert.deepEqual(m.mediaType, "application/vnd.oci.image.manifest.v1+json");
  }
  const list = await get("docker");
  assert.deepEqual(list.type, "application/vnd.docker.distribution.manifest.list.v2+json");
  assert.deepEqual(
    list.json.manifests.map((m: any) => m.platform),
    index.json.manifests.map((m: any) => m.platform),
  );
  const v2s2 = await get("amd64-docker");
  assert.deepEqual(v2s2.type, "application/vnd.docker.distribution.manifest.v2+json");
  assert.deepEqual(v2s2.json.config.mediaType, "application/vnd.docker.container.image.v1+json");
  assert.deepEqual(
    v2s2.json.layers[0].mediaType,
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
  );
  const arm = await get("armv7");
  assert.deepEqual(arm.digest, env.busybox.arches.find((a) => a.tag === "armv7")!.digest);
  const cfg = await regFetch(env, "plain", `/v2/library/busybox/blobs/${arm.json.config.digest}`);
  const config = cfg.json();
  assert.deepEqual([config.architecture, config.os, config.variant], ["arm", "linux", "v7"]);
  assert.deepEqual(config.config.Cmd, ["sh"]);
  assert.deepEqual(config.rootfs.diff_ids.length, 1);
});

/** ELF identity per OCI architecture: class (1=32, 2=64 bit), data (1=LE, 2=BE), e_machine. */
const ELF: Record<string, [number, number, number]> = {
  amd64: [2, 1, 62],
  arm64: [2, 1, 183],
  arm: [1, 1, 40],
  "386": [1, 1, 3],
  ppc64le: [2, 1, 21],
  s390x: [2, 2, 22],
};

Deno.test("testbed: each arch's layer holds an ELF bin/busybox of the right machine", async () => {
  const env = await testbed();
  await using tmp = await tempDir();
  for (const a of env.busybox.arches) {
    const r = await regFetch(env, "basic", `/v2/library/busybox/blobs/${a.layer}`);
    assert.deepEqual(r.status, 200);
    assert.deepEqual(sha256(r.body), a.layer);
    const file = join(tmp.path, `${a.tag}.tar.gz`);
    await Deno.writeFile(file, r.body);
    // GNU tar, an independent reader of what our tar writer produced.
    const list = await run("tar", ["-tzf", file]);
    const names = list.stdout.trim().split("\n");
    assert.deepEqual(names, [...names].sort(), "entries are sorted");
    assert(names.includes("bin/busybox") && names.includes("bin/sh"), a.tag);
    assert.ok(!names.some((n) => n.startsWith("./") || n.startsWith("/")), "no ./ or / prefix");
    const verbose = await run("tar", ["--numeric-owner", "-tvzf", file]);
    for (const line of verbose.stdout.trim().split("\n")) {
      assert.match(line, / 0\/0 .* 1970-01-01 00:00 /);
    }
    await run("tar", ["-xzf", file, "-C", tmp.path, "bin/busybox"]);
    const elf = await Deno.readFile(join(tmp.path, "bin", "busybox"));
    assert.deepEqual([...elf.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46], "ELF magic");
    const [cls, data, machine] = ELF[a.platform.architecture];
    assert.deepEqual([elf[4], elf[5]], [cls, data], `${a.tag} class/endianness`);
    const view = new DataView(elf.buffer, elf.byteOffset);
    assert.deepEqual(view.getUint16(18, data === 1), machine, `${a.tag} e_machine`);
    // diff_id: the digest of the uncompressed tar.
    const tar = await run("sh", ["-c", 'gzip -dc "$1" | sha256sum', "sh", file]);
    assert.deepEqual(`sha256:${tar.stdout.split(" ")[0]}`, a.diffId);
    await Deno.remove(join(tmp.path, "bin"), { recursive: true });
  }
});

Deno.test("testbed: building the layout twice in fresh dirs gives the same digests", async () => {
  const env = await testbed();
  await using tmp = await tempDir();
  const debs = new Map(ARCHES.map((a) => [a.deb, cachedDeb(env.debsDir, a.deb)!]));
  const results = [];
  for (const n of [1, 2]) {
    results.push(
      await buildBusyboxLayout({
        debs,
        layoutDir: join(tmp.path, `oci${n}`),
        workDir: join(tmp.path, `work${n}`),
        force: true,
      }),
    );
  }
  assert.deepEqual(results[0].indexDigest, results[1].indexDigest);
  assert.deepEqual(results[0].indexDigest, env.busybox.indexDigest);
  assert.deepEqual(results[0].dockerListDigest, env.busybox.dockerListDigest);
  assert.deepEqual(results[0].arches, results[1].arches);
  const a = await Deno.readTextFile(join(tmp.path, "oci1", "index.json"));
  const b = await Deno.readTextFile(join(tmp.path, "oci2", "index.json"));
  assert.deepEqual(a, b);
});

Deno.test("testbed: stop only kills pids whose cmdline matches", async () => {
  await using tmp = await tempDir();
  const child = new Deno.Command("sleep", { args: ["30"] }).spawn();
  try {
    const pidFile = join(tmp.path, "x.pid");
    await Deno.writeTextFile(pidFile, `${child.pid}\n`);
    assert.deepEqual(livePid({ pidFile, markers: ["not-this"] }), undefined);
    assert.deepEqual(await stopService({ pidFile, markers: ["not-this"] }), undefined);
    // Still alive: a zero signal succeeds.
    Deno.kill(child.pid, "SIGCONT");
    await Deno.writeTextFile(pidFile, `${child.pid}\n`);
    const argv = procCmdline(child.pid)!;
    assert.deepEqual(argv.slice(1), ["30"]);
    assert.deepEqual(await stopService({ pidFile, markers: argv }), child.pid);
    const status = await child.status;
    assert.deepEqual(status.signal, "SIGTERM");
  } finally {
    try {
      child.kill();
    } catch { /* gone */ }
    await child.status;
  }
});
