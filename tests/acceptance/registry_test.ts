/**
 * The foundation issue's acceptance, end to end through `cli.ts` against the real test-bed
 * registries, with skopeo and umoci reading back what we wrote.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  ref,
  remoteDigest,
  skopeo,
  startExtraRegistry,
  tempDir,
  testbed,
  type TestbedEnv,
} from "../_testbed.ts";

const CLI = new URL("../../cli.ts", import.meta.url).pathname;

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Exactly one line on stderr, starting `error:`, with no stack frame and no secret. */
function assertOneErrorLine(r: CliResult, env: TestbedEnv, expect: RegExp): void {
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `expected one stderr line, got:\n${r.stderr}`);
  assert.match(lines[0], /^error: /);
  assert.match(lines[0], expect);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  for (const secret of [env.pass, btoa(`${env.user}:${env.pass}`), "wrongpass"]) {
    assert.ok(!r.stderr.includes(secret) && !r.stdout.includes(secret), "secret in output");
  }
}

const ca = (env: TestbedEnv, host: string) => `--registry-certificate=${host}=${env.ca}`;
const platformText = (p: { os: string; architecture: string; variant?: string }) =>
  [p.os, p.architecture, p.variant].filter(Boolean).join("/");
const unique = () => `acc-${crypto.randomUUID().slice(0, 8)}`;

Deno.test("copy --all plain → TLS+basic keeps the index digest; every child is fetchable", async () => {
  const env = await testbed();
  const basic = env.registries.basic.host;
  const dst = ref(env, "basic", `${unique()}/busybox:v1`);
  const r = await cli(
    ["copy", "--all", ref(env, "plain", "library/busybox:latest"), dst, ca(env, basic)],
    { DOCKER_CONFIG: env.dockerConfigDir },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), env.busybox.indexDigest);
  const repo = dst.slice(basic.length + 1, dst.lastIndexOf(":"));
  assert.equal(await remoteDigest(env, "basic", repo, "v1"), env.busybox.indexDigest);
  await using tmp = await tempDir();
  for (const arch of env.busybox.arches) {
    // skopeo pulls the child with every blob, verifying each digest.
    const pulled = await skopeo(
      ["copy", `docker://${basic}/${repo}@${arch.digest}`, `oci:${tmp.path}/${arch.tag}:x`],
      { env, src: "basic" },
    );
    assert.equal(pulled.code, 0, pulled.stderr);
    const config = await skopeo(["inspect", "--config", `oci:${tmp.path}/${arch.tag}:x`], { env });
    assert.equal(JSON.parse(config.stdout).architecture, arch.platform.architecture);
  }
});

Deno.test("manifest and digest --platform pick the right child, arm/v7 included", async () => {
  const env = await testbed();
  const src = ref(env, "plain", "library/busybox:latest");
  for (const arch of env.busybox.arches) {
    const d = await cli(["digest", src, "--platform", platformText(arch.platform)]);
    assert.equal(d.code, 0, d.stderr);
    assert.equal(d.stdout.trim(), arch.digest, platformText(arch.platform));
  }
  const m = await cli(["manifest", src, "--platform", "linux/arm/v7"]);
  assert.equal(m.code, 0, m.stderr);
  const armv7 = env.busybox.arches.find((a) => platformText(a.platform) === "linux/arm/v7")!;
  const bytes = new TextEncoder().encode(m.stdout);
  const digest = `sha256:${
    Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)))
      .map((b) => b.toString(16).padStart(2, "0")).join("")
  }`;
  assert.equal(digest, armv7.digest, "manifest bytes are exactly as served");
  const top = await cli(["manifest", src]);
  assert.equal(JSON.parse(top.stdout).manifests.length, env.busybox.arches.length);
});

Deno.test("copy into an OCI layout validates with umoci and skopeo", async () => {
  const env = await testbed();
  await using tmp = await tempDir();
  const layout = join(tmp.path, "layout");
  const r = await cli([
    "copy",
    "--all",
    ref(env, "token", "library/busybox:latest"),
    `oci:${layout}:v1`,
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), env.busybox.indexDigest);
  const ls = await new Deno.Command("umoci", { args: ["ls", "--layout", layout] }).output();
  assert.equal(new TextDecoder().decode(ls.stdout).trim(), "v1");
  const amd64 = await cli([
    "copy",
    "--platform",
    "linux/amd64",
    ref(env, "plain", "library/busybox:latest"),
    `oci:${layout}:amd64`,
  ]);
  assert.equal(amd64.code, 0, amd64.stderr);
  const bundle = join(tmp.path, "bundle");
  const unpack = await new Deno.Command("umoci", {
    args: ["unpack", "--image", `${layout}:amd64`, bundle],
    stderr: "piped",
  }).output();
  assert.equal(unpack.code, 0, new TextDecoder().decode(unpack.stderr));
  const busybox = await Deno.lstat(join(bundle, "rootfs/bin/busybox"));
  assert.ok(busybox.isFile);
  const inspect = await skopeo(["inspect", `oci:${layout}:amd64`], { env });
  assert.equal(inspect.code, 0, inspect.stderr);
  assert.equal(JSON.parse(inspect.stdout).Architecture, "amd64");
});

Deno.test("a second copy moves nothing: only missing blobs move", async () => {
  const env = await testbed();
  const dst = ref(env, "tls", `${unique()}/busybox:v1`);
  const args = ["copy", "--all", ref(env, "plain", "library/busybox:latest"), dst];
  const flags = [ca(env, env.registries.tls.host)];
  const first = await cli([...args, ...flags]);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stderr, /12 blobs uploaded/);
  const second = await cli([...args, ...flags]);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stderr, /0 blobs uploaded/);
});

Deno.test("failures are one error line with the right exit code and no secret", async () => {
  const env = await testbed();
  await using tmp = await tempDir();
  const basic = env.registries.basic.host;
  const token = env.registries.token.host;
  const wrong = btoa(`${env.user}:wrongpass`);
  await Deno.writeTextFile(
    join(tmp.path, "config.json"),
    JSON.stringify({ auths: { [basic]: { auth: wrong }, [token]: { auth: wrong } } }),
  );
  const bad = { DOCKER_CONFIG: tmp.path };
  const cases: Array<[string[], Record<string, string>, number, RegExp]> = [
    [["digest", "Upper/Case:1"], {}, 1, /invalid reference "Upper\/Case:1"/],
    [["digest", "a/b:-bad-tag"], {}, 1, /invalid reference/],
    [["copy", "a"], {}, 2, /copy/],
    [["digest", "x", "--push-retry=abc"], {}, 2, /--push-retry/],
    [
      ["digest", `${basic}/library/busybox:latest`, ca(env, basic)],
      bad,
      1,
      /refused the credentials|invalid username or password/,
    ],
    [["digest", `${token}/library/busybox:latest`], bad, 1, /invalid username or password/],
    [
      ["digest", "127.0.0.1:1234/a/b:c"],
      {},
      1,
      /cannot reach 127\.0\.0\.1:1234: connection refused/,
    ],
    [["digest", "nosuch.invalid/a/b:c"], {}, 1, /cannot reach nosuch\.invalid/],
    [
      ["digest", `${basic}/library/busybox:latest`],
      bad,
      1,
      /TLS connection to .* --registry-certificate/,
    ],
    [["digest", ref(env, "plain", "library/busybox:nope")], {}, 1, /MANIFEST_UNKNOWN/],
  ];
  for (const [args, extraEnv, code, expect] of cases) {
    const r = await cli(args, extraEnv);
    assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
    assertOneErrorLine(r, env, expect);
  }
});

Deno.test("tags lists every tag of a repository", async () => {
  const env = await testbed();
  const r = await cli(["tags", ref(env, "plain", "library/busybox")]);
  assert.equal(r.code, 0, r.stderr);
  const tags = r.stdout.trim().split("\n");
  for (const t of env.busybox.tags) assert.ok(tags.includes(t), `${t} listed`);
});

Deno.test("client certificates: --registry-client-cert reaches an mTLS registry", async () => {
  const env = await testbed();
  await using mtls = await startExtraRegistry(env, { tls: true, mtls: true });
  const host = mtls.info.host;
  const src = ref(env, "plain", "library/busybox:amd64");
  const dst = `${host}/mtls/busybox:v1`;
  const refused = await cli(["copy", src, dst, ca(env, host)]);
  assert.equal(refused.code, 1);
  assertOneErrorLine(refused, env, /--registry-client-cert/);
  const cert = `--registry-client-cert=${host}=${env.clientCert},${env.clientKey}`;
  const copied = await cli(["copy", src, dst, ca(env, host), cert]);
  assert.equal(copied.code, 0, copied.stderr);
  const amd64 = env.busybox.arches.find((a) => a.tag === "amd64")!;
  assert.equal(copied.stdout.trim(), amd64.digest);
  const digest = await cli(["digest", dst, ca(env, host), cert]);
  assert.equal(digest.stdout.trim(), amd64.digest);
});
