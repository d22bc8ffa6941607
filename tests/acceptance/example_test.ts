/**
 * The README's first command, `deno task example`, builds `examples/` into an OCI layout and a
 * docker-load tarball without a registry, and also pushes to the test bed when it runs.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { skopeo, testbed } from "../_testbed.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

async function example(env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "example"],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("deno task example: no registry needed, the layout and tarball are readable", async () => {
  const none = await Deno.makeTempDir();
  try {
    const r = await example({ TESTBED_DIR: none });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /skopeo inspect oci:/);
    const env = await testbed();
    const layout = await skopeo([
      "inspect",
      "--config",
      `oci:${join(ROOT, "out/example-oci")}:latest`,
    ], { env });
    assert.equal(layout.code, 0, layout.stderr);
    const config = JSON.parse(layout.stdout);
    assert.deepEqual(config.config.Cmd, ["httpd", "-f", "-p", "8080", "-h", "/srv/site"]);
    assert.equal(config.config.WorkingDir, "/srv");
    const archive = await skopeo(["inspect", `docker-archive:${join(ROOT, "out/example.tar")}`], {
      env,
    });
    assert.equal(archive.code, 0, archive.stderr);
  } finally {
    await Deno.remove(none, { recursive: true });
  }
});

Deno.test("deno task example: with the test bed up, built on busybox and pushed", async () => {
  const env = await testbed();
  const r = await example({ TESTBED_DIR: env.stateDir });
  assert.equal(r.code, 0, r.stderr);
  const pushed = `${env.registries.plain.host}/examples/site:latest`;
  assert.match(r.stdout, new RegExp(pushed.replaceAll(".", "\\.")));
  const inspect = await skopeo(["inspect", `docker://${pushed}`], { env, variant: "plain" });
  assert.equal(inspect.code, 0, inspect.stderr);
  assert.ok(JSON.parse(inspect.stdout).Layers.length >= 2, "busybox layer plus the example's");
});
