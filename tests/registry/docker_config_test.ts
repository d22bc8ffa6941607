import assert from "node:assert/strict";
import { join } from "node:path";
import { KanikoError } from "../../lib/errors.ts";
import {
  basicAuthorization,
  clearCredentialCache,
  configDir,
  convertToHostname,
  type Credentials,
  isAnonymous,
  resolveCredentials,
  scrubSecrets,
  secretsOf,
} from "../../lib/registry/docker_config.ts";

const SECRET = "s3cr3t-pa55w0rd";
const ROOT = Deno.makeTempDirSync({ prefix: "kaniko-docker-config-test-" });
globalThis.addEventListener("unload", () => Deno.removeSync(ROOT, { recursive: true }));
const b64 = (s: string) => btoa(s);

async function configIn(config: unknown): Promise<string> {
  const dir = await Deno.makeTempDir({ dir: ROOT });
  const text = typeof config === "string" ? config : JSON.stringify(config);
  await Deno.writeTextFile(join(dir, "config.json"), text);
  return dir;
}

/** Writes `docker-credential-NAME` scripts into a temp dir; returns the env for them. */
async function helpers(scripts: Record<string, string>): Promise<{ PATH: string; dir: string }> {
  const dir = await Deno.makeTempDir({ dir: ROOT });
  for (const [name, body] of Object.entries(scripts)) {
    const file = join(dir, `docker-credential-${name}`);
    await Deno.writeTextFile(file, `#!/bin/sh\n${body}\n`);
    await Deno.chmod(file, 0o755);
  }
  return { PATH: `${dir}:/usr/bin:/bin`, dir };
}

function plain(c: Credentials): Record<string, string | undefined> {
  return { ...c };
}

async function resolveFresh(registry: string, dir: string, env?: Record<string, string>) {
  clearCredentialCache();
  return await resolveCredentials(registry, { dockerConfigDir: dir, env });
}

Deno.test("missing config file or directory is anonymous", async () => {
  const dir = await Deno.makeTempDir({ dir: ROOT });
  const creds = await resolveFresh("localhost:5000", join(dir, "nope"));
  assert.ok(isAnonymous(creds));
  assert.equal(creds.source, join(dir, "nope", "config.json"));
  const empty = await configIn("");
  assert.ok(isAnonymous(await resolveFresh("localhost:5000", empty)));
});

Deno.test("auths: auth field and key forms as docker normalises them", async () => {
  const auth = b64(`alice:${SECRET}`);
  const keys = [
    "localhost:5000",
    "https://localhost:5000",
    "http://localhost:5000",
    "https://localhost:5000/v1/",
    "https://localhost:5000/v2/some/path",
  ];
  for (const key of keys) {
    const dir = await configIn({ auths: { [key]: { auth } } });
    const creds = await resolveFresh("localhost:5000", dir);
    assert.deepEqual(
      plain(creds),
      { username: "alice", password: SECRET, source: join(dir, "config.json") },
      key,
    );
    assert.ok(isAnonymous(await resolveFresh("localhost:5001", dir)), `${key} is not :5001`);
  }
});

Deno.test("auths: Docker Hub under https://index.docker.io/v1/ and its aliases", async () => {
  for (const key of ["https://index.docker.io/v1/", "index.docker.io", "docker.io"]) {
    const dir = await configIn({ auths: { [key]: { auth: b64("bob:pw:with:colons") } } });
    for (const registry of ["docker.io", "index.docker.io"]) {
      const creds = await resolveFresh(registry, dir);
      assert.equal(creds.username, "bob", `${key} ${registry}`);
      assert.equal(creds.password, "pw:with:colons");
    }
    assert.ok(isAnonymous(await resolveFresh("ghcr.io", dir)));
  }
});

Deno.test("auths: username/password, identitytoken, registrytoken, unicode", async () => {
  const dir = await configIn({
    auths: {
      "a.io": { username: "u", password: "p" },
      "b.io": { auth: "", identitytoken: "id-token-value" },
      "c.io": { registrytoken: "reg-token-value" },
      "d.io": { auth: btoa(String.fromCharCode(...new TextEncoder().encode("jörg:päss"))) },
      "e.io": {},
      "f.io": null,
    },
    credsStore: "",
  });
  assert.deepEqual(plain(await resolveFresh("a.io", dir)), {
    username: "u",
    password: "p",
    source: join(dir, "config.json"),
  });
  assert.equal((await resolveFresh("b.io", dir)).identityToken, "id-token-value");
  assert.equal((await resolveFresh("c.io", dir)).registryToken, "reg-token-value");
  const d = await resolveFresh("d.io", dir);
  assert.deepEqual([d.username, d.password], ["jörg", "päss"]);
  assert.ok(isAnonymous(await resolveFresh("e.io", dir)));
  assert.ok(isAnonymous(await resolveFresh("f.io", dir)));
});

Deno.test("malformed config: one clear error naming the file, no secret", async () => {
  const cases: [unknown, RegExp][] = [
    ["{not json", /is not valid JSON/],
    [{ auths: [] }, /is malformed: auths/],
    [{ auths: { "x.io": { auth: 42 } } }, /is malformed: auths\.x\.io\.auth/],
    [{ credHelpers: { "x.io": 1 } }, /is malformed: credHelpers/],
    [{ auths: { "x.io": { auth: `!!${SECRET}!!` } } }, /"auth" of x\.io is not base64/],
    [{ auths: { "x.io": { auth: b64(`nocolon${SECRET}`) } } }, /not base64 user:password/],
    [{ credHelpers: { "x.io": "../evil" } }, /invalid credential helper name/],
  ];
  for (const [config, pattern] of cases) {
    const dir = await configIn(config);
    await assert.rejects(resolveFresh("x.io", dir), (e: unknown) => {
      assert.ok(e instanceof KanikoError);
      assert.match(e.message, pattern);
      assert.ok(e.message.includes(join(dir, "config.json")), e.message);
      assert.ok(!e.message.includes(SECRET) && !e.message.includes("\n"), e.message);
      return true;
    });
  }
});

Deno.test("credHelpers and credsStore run docker-credential-NAME get", async () => {
  const env = await helpers({
    test: `read url; echo "$url" >> "$(dirname "$0")/calls"
case "$url" in
  https://index.docker.io/v1/) echo '{"ServerURL":"'$url'","Username":"<token>","Secret":"refresh-123"}';;
  *) echo '{"ServerURL":"'$url'","Username":"helper-user","Secret":"${SECRET}"}';;
esac`,
    store: `read url; echo "credentials not found in native keychain"; exit 1`,
  });
  const dir = await configIn({
    auths: { "helped.io": { auth: b64("file:ignored") } },
    credHelpers: { "helped.io": "test", "https://index.docker.io/v1/": "test" },
    credsStore: "store",
  });
  const e = { PATH: env.PATH };
  const creds = await resolveFresh("helped.io", dir, e);
  assert.deepEqual(plain(creds), {
    username: "helper-user",
    password: SECRET,
    source: "credential helper docker-credential-test",
  });
  const hub = await resolveFresh("docker.io", dir, e);
  assert.deepEqual(plain(hub), {
    identityToken: "refresh-123",
    source: "credential helper docker-credential-test",
  });
  // The default store says "not found": anonymous, not an error.
  const other = await resolveFresh("other.io", dir, e);
  assert.ok(isAnonymous(other));
  assert.equal(other.source, "credential helper docker-credential-store");
  const calls = await Deno.readTextFile(join(env.dir, "calls"));
  assert.deepEqual(calls.trim().split("\n"), ["helped.io", "https://index.docker.io/v1/"]);
});

Deno.test("resolveCredentials caches per registry per process", async () => {
  const env = await helpers({
    count: `read url; echo x >> "$(dirname "$0")/count"
echo '{"Username":"u","Secret":"p"}'`,
  });
  const dir = await configIn({ credsStore: "count" });
  clearCredentialCache();
  const opts = { dockerConfigDir: dir, env: { PATH: env.PATH } };
  const [a, b] = await Promise.all([
    resolveCredentials("r.io", opts),
    resolveCredentials("r.io", opts),
  ]);
  assert.equal(a, b);
  await resolveCredentials("r.io", opts);
  await resolveCredentials("s.io", opts);
  const count = (await Deno.readTextFile(join(env.dir, "count"))).trim().split("\n").length;
  assert.equal(count, 2, "one helper run per registry");
});

Deno.test("helper missing, failing or garbled: clear errors without secrets", async () => {
  const env = await helpers({
    fail: `read url; echo "boom: keychain locked" >&2; exit 3`,
    leaky: `read url; echo '{"Username":"u","Secret":"${SECRET}"}'; exit 1`,
    garbled: `read url; echo 'Secret=${SECRET}'`,
    empty: `read url; echo '{"ServerURL":"x","Username":"","Secret":""}'`,
  });
  const cases: [string, RegExp][] = [
    ["missing", /credential helper docker-credential-missing .*is not installed/],
    ["fail", /docker-credential-fail exited with 3 for x\.io: boom: keychain locked/],
    ["leaky", /docker-credential-leaky exited with 1 for x\.io$/],
    ["garbled", /docker-credential-garbled printed an invalid answer for x\.io/],
  ];
  for (const [name, pattern] of cases) {
    const dir = await configIn({ credHelpers: { "x.io": name } });
    await assert.rejects(resolveFresh("x.io", dir, { PATH: env.PATH }), (e: unknown) => {
      assert.ok(e instanceof KanikoError, String(e));
      assert.match(e.message, pattern);
      assert.ok(!e.message.includes(SECRET), e.message);
      assert.ok(!(e.hint ?? "").includes(SECRET));
      return true;
    });
  }
  const dir = await configIn({ credHelpers: { "x.io": "empty" } });
  assert.ok(isAnonymous(await resolveFresh("x.io", dir, { PATH: env.PATH })));
});

Deno.test("a failed lookup is not cached", async () => {
  const env = await helpers({});
  const dir = await configIn({ credsStore: "later" });
  clearCredentialCache();
  const opts = { dockerConfigDir: dir, env: { PATH: env.PATH } };
  await assert.rejects(resolveCredentials("r.io", opts), /not installed/);
  await Deno.writeTextFile(
    join(env.dir, "docker-credential-later"),
    `#!/bin/sh\nread url\necho '{"Username":"u","Secret":"p"}'\n`,
  );
  await Deno.chmod(join(env.dir, "docker-credential-later"), 0o755);
  assert.equal((await resolveCredentials("r.io", opts)).username, "u");
});

Deno.test("credentials never show their secrets in string forms", async () => {
  const dir = await configIn({ auths: { "x.io": { auth: b64(`u:${SECRET}`) } } });
  const creds = await resolveFresh("x.io", dir);
  const forms = [
    String(creds),
    `${creds}`,
    JSON.stringify(creds),
    JSON.stringify({ nested: creds }),
    Deno.inspect(creds),
    Deno.inspect({ deep: { creds } }, { depth: 10 }),
  ];
  for (const form of forms) assert.ok(!form.includes(SECRET), form);
  assert.match(JSON.stringify(creds), /redacted/);
  assert.equal(creds.password, SECRET, "the field itself is readable");
});

Deno.test("helpers: basicAuthorization, secretsOf, scrubSecrets, convertToHostname, configDir", () => {
  const creds = { username: "u", password: SECRET };
  assert.equal(basicAuthorization(creds), `Basic ${b64(`u:${SECRET}`)}`);
  assert.equal(basicAuthorization({ identityToken: "t" }), undefined);
  assert.deepEqual(secretsOf(creds), [SECRET, b64(`u:${SECRET}`)]);
  assert.equal(scrubSecrets(`x ${SECRET} ${encodeURIComponent(SECRET)} y`, creds), "x *** *** y");
  assert.equal(convertToHostname("https://index.docker.io/v1/"), "index.docker.io");
  assert.equal(convertToHostname("http://h:5000/a"), "h:5000");
  assert.equal(convertToHostname("h:5000"), "h:5000");
  assert.equal(configDir("/x"), "/x");
  const saved = Deno.env.get("DOCKER_CONFIG");
  try {
    Deno.env.set("DOCKER_CONFIG", "/kaniko/.docker");
    assert.equal(configDir(), "/kaniko/.docker");
    Deno.env.delete("DOCKER_CONFIG");
    assert.equal(configDir(), join(Deno.env.get("HOME") ?? "", ".docker"));
  } finally {
    if (saved === undefined) Deno.env.delete("DOCKER_CONFIG");
    else Deno.env.set("DOCKER_CONFIG", saved);
  }
});
