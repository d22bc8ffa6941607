import assert from "node:assert/strict";
import {
  bodyOf,
  FakeRegistry,
  freePort,
  makeImage,
  makeTestCertificates,
  ociError,
  runCli,
} from "../_fake_registry.ts";

const USER = "deploy-bot";
const PASSWORD = "Sup3r-Secret-Pa55";

/** Exactly one `error:` line on stderr, exit code 1, nothing on stdout, no stack. */
function assertOneErrorLine(r: { code: number; out: string; err: string }): string {
  assert.equal(r.code, 1, r.err);
  assert.equal(r.out, "");
  assert.ok(r.err.endsWith("\n"), JSON.stringify(r.err));
  const lines = r.err.slice(0, -1).split("\n");
  assert.equal(lines.length, 1, r.err);
  assert.ok(lines[0].startsWith("error: "), lines[0]);
  assert.doesNotMatch(r.err, /^\s+at /m, "no stack trace");
  return lines[0];
}

function assertNoSecret(text: string) {
  for (const secret of [PASSWORD, btoa(`${USER}:${PASSWORD}`), encodeURIComponent(PASSWORD)]) {
    assert.ok(!text.includes(secret), `secret found in: ${text}`);
  }
}

async function dockerConfig(host: string, password = PASSWORD): Promise<string> {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(
    `${dir}/config.json`,
    JSON.stringify({ auths: { [host]: { auth: btoa(`${USER}:${password}`) } } }),
  );
  return dir;
}

Deno.test("errors: an unreachable registry is one line", async () => {
  const port = freePort();
  for (const cmd of [["manifest", `127.0.0.1:${port}/app:v1`], ["tags", `127.0.0.1:${port}/app`]]) {
    const line = assertOneErrorLine(await runCli(cmd));
    assert.equal(line, `error: cannot reach 127.0.0.1:${port}: connection refused`);
  }
});

Deno.test("errors: an invalid reference is one line", async () => {
  const line = assertOneErrorLine(await runCli(["digest", "Registry.Example/UPPER:x"]));
  assert.match(line, /^error: invalid reference "Registry.Example\/UPPER:x": /);
});

Deno.test("errors: refused credentials are one line without the password", async (t) => {
  for (const kind of ["basic", "bearer"] as const) {
    await t.step(kind, async () => {
      const reg = await FakeRegistry.start({ auth: { kind, username: USER, password: "other" } });
      const dir = await dockerConfig(reg.host);
      try {
        reg.seedImage("app", makeImage(), "v1");
        const env = { DOCKER_CONFIG: dir };
        const r = await runCli(["manifest", `${reg.host}/app:v1`], { env });
        const line = assertOneErrorLine(r);
        assert.match(line, /refused|invalid username or password/);
        assert.ok(line.includes(`${dir}/config.json`), "names where the credentials came from");
        assertNoSecret(r.err);
        const debug = await runCli(["manifest", `${reg.host}/app:v1`, "--verbosity=debug"], {
          env,
        });
        assert.equal(debug.code, 1);
        assertNoSecret(debug.err);
      } finally {
        await reg.close();
        await Deno.remove(dir, { recursive: true });
      }
    });
  }
});

Deno.test("errors: a registry echoing the credentials does not leak them", async () => {
  const reg = await FakeRegistry.start({
    auth: { kind: "basic", username: USER, password: PASSWORD },
  });
  const dir = await dockerConfig(reg.host);
  try {
    reg.seedImage("app", makeImage(), "v1");
    reg.intercept({ method: "GET", path: "/manifests/v1" }, (req) =>
      ociError(
        403,
        "DENIED",
        `user ${USER} (password ${PASSWORD}, header ${
          req.headers.get("authorization")
        }) may not pull`,
      ));
    const r = await runCli(["manifest", `${reg.host}/app:v1`], { env: { DOCKER_CONFIG: dir } });
    const line = assertOneErrorLine(r);
    assert.match(line, /DENIED/);
    assertNoSecret(r.err);
  } finally {
    await reg.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("errors: working credentials are used and never printed, even at debug", async () => {
  const reg = await FakeRegistry.start({
    auth: { kind: "bearer", username: USER, password: PASSWORD },
  });
  const dir = await dockerConfig(reg.host);
  try {
    const img = makeImage();
    reg.seedImage("app", img, "v1");
    const r = await runCli(["digest", `${reg.host}/app:v1`, "--verbosity=trace"], {
      env: { DOCKER_CONFIG: dir },
    });
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, `${img.manifest.digest}\n`);
    assertNoSecret(r.err);
  } finally {
    await reg.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("errors: TLS failures name the host and the flag to use", async () => {
  const certs = await makeTestCertificates();
  const reg = await FakeRegistry.start({ tls: { cert: certs.cert, key: certs.key } });
  try {
    const img = makeImage();
    reg.seedImage("app", img, "v1");
    const line = assertOneErrorLine(await runCli(["digest", `${reg.host}/app:v1`]));
    assert.match(line, new RegExp(`^error: TLS connection to ${reg.host} failed: `));
    assert.ok(line.includes(`--registry-certificate ${reg.host}=`), line);
    const withCa = await runCli([
      "digest",
      `${reg.host}/app:v1`,
      `--registry-certificate=${reg.host}=${certs.caFile}`,
    ]);
    assert.equal(withCa.code, 0, withCa.err);
    assert.equal(withCa.out, `${img.manifest.digest}\n`);
    const skip = await runCli([
      "digest",
      `${reg.host}/app:v1`,
      "--skip-tls-verify-registry",
      reg.host,
    ]);
    assert.equal(skip.code, 0, skip.err);
    assert.equal(skip.out, `${img.manifest.digest}\n`);
  } finally {
    await reg.close();
    await Deno.remove(certs.dir, { recursive: true });
  }
});

Deno.test("errors: an oversized manifest is refused in one line", async () => {
  const reg = await FakeRegistry.start();
  try {
    const big = new Uint8Array(5 * 1024 * 1024).fill(0x20);
    big.set(new TextEncoder().encode('{"schemaVersion":2,"manifests":[]}'));
    reg.intercept(
      { method: "GET", path: "/manifests/big" },
      () =>
        new Response(bodyOf(big), {
          headers: { "content-type": "application/vnd.oci.image.index.v1+json" },
        }),
    );
    const line = assertOneErrorLine(await runCli(["manifest", `${reg.host}/app:big`]));
    assert.match(line, /larger than .*4 MiB|larger than 4194304 bytes/);
  } finally {
    await reg.close();
  }
});
