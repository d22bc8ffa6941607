/**
 * The `oci://` context source against the test bed's real registries: a local directory packed
 * as the k8s driver does (after .dockerignore, Dockerfile and ignore file always included),
 * pushed as an OCI artifact and pulled back through prepareContext; TLS + basic auth; digest
 * pinning; what is refused.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { jobSource } from "../../drivers/k8s/context.ts";
import { parseInvocation } from "../../lib/cli/invocation.ts";
import type { BuildOptions } from "../../lib/cli/options.ts";
import {
  CONTEXT_ARTIFACT_TYPE,
  IgnoreMatcher,
  parseContextSpec,
  prepareContext,
  walkContext,
} from "../../lib/context/mod.ts";
import { KanikoError, UsageError } from "../../lib/errors.ts";
import { RegistrySession } from "../../lib/registry/session.ts";
import { cliFlags, ref, regFetch, tempDir, testbed } from "../_testbed.ts";

function options(argv: string[], dockerConfig: string): BuildOptions {
  const inv = parseInvocation(argv, {
    env: (n) => n === "DOCKER_CONFIG" ? dockerConfig : undefined,
  });
  assert.equal(inv.command, "build");
  return (inv as { options: BuildOptions }).options;
}

async function tree(dir: string): Promise<string[]> {
  await using ctx = await prepareContext(dir);
  const out: string[] = [];
  for await (const e of walkContext({ ...ctx, ignore: IgnoreMatcher.empty() }, ".")) {
    const kind = e.info.isSymlink
      ? `-> ${await Deno.readLink(e.absolute)}`
      : e.info.isDirectory
      ? "dir"
      : `${(e.info.mode ?? 0) & 0o777} ${await Deno.readTextFile(e.absolute)}`;
    out.push(`${e.path} ${kind}`);
  }
  return out.sort();
}

async function writeTree(base: string) {
  await Deno.mkdir(join(base, "src/sub"), { recursive: true });
  await Deno.mkdir(join(base, "logs"));
  await Deno.writeTextFile(join(base, "Dockerfile"), "FROM scratch\nCOPY . /\n");
  await Deno.writeTextFile(
    join(base, ".dockerignore"),
    "secret.txt\nlogs/\n!logs/keep.log\n.dockerignore\nDockerfile\n",
  );
  await Deno.writeTextFile(join(base, "secret.txt"), "do not send");
  await Deno.writeTextFile(join(base, "logs/a.log"), "no");
  await Deno.writeTextFile(join(base, "logs/keep.log"), "kept");
  await Deno.writeTextFile(join(base, "src/main.go"), "package main");
  await Deno.writeTextFile(join(base, "src/sub/run.sh"), "#!/bin/sh\n");
  await Deno.chmod(join(base, "src/sub/run.sh"), 0o755);
  await Deno.symlink("main.go", join(base, "src/link"));
}

Deno.test("oci:// round trip on the test bed: only what .dockerignore lets through", async () => {
  const env = await testbed();
  await using tmp = await tempDir();
  const base = join(tmp.path, "ctx");
  await writeTree(base);
  const dest = ref(env, "plain", `k8s-ctx/app-${crypto.randomUUID().slice(0, 8)}:1`);
  const opts = options(
    [`--context=${base}`, `-d=${dest}`, ...cliFlags(env, "plain")],
    env.dockerConfigDir,
  );
  await using local = await prepareContext(base, { dockerfile: opts.dockerfile });
  const session = new RegistrySession(opts.registry);
  try {
    const source = await jobSource(opts, local, session);
    assert.match(
      source.context,
      new RegExp(`^oci://${dest.replace(/:1$/, "")}@sha256:[a-f0-9]{64}$`),
    );
    assert.equal(source.dockerfile, "Dockerfile");
    assert.equal(source.contextSubPath, undefined);
    // the artifact: OCI manifest, our artifactType, the empty config, one gzip tar layer
    const [, digest] = source.context.split("@");
    const repo = dest.slice(dest.indexOf("/") + 1).replace(/:1$/, "");
    const m = await regFetch(env, "plain", `/v2/${repo}/manifests/${digest}`, {
      headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
    });
    const manifest = JSON.parse(new TextDecoder().decode(m.body));
    assert.equal(manifest.artifactType, CONTEXT_ARTIFACT_TYPE);
    assert.equal(manifest.config.mediaType, "application/vnd.oci.empty.v1+json");
    assert.deepEqual(
      manifest.layers.map((l: { mediaType: string }) => l.mediaType),
      ["application/vnd.oci.image.layer.v1.tar+gzip"],
    );
    // pulled back: the ignored files are absent; Dockerfile and .dockerignore are there
    const pulled = await prepareContext(source.context, { registry: opts.registry });
    try {
      assert.equal(pulled.kind, "oci");
      const got = await tree(pulled.root);
      assert.deepEqual(got, [
        `.dockerignore 420 ${await Deno.readTextFile(join(base, ".dockerignore"))}`,
        "Dockerfile 420 FROM scratch\nCOPY . /\n",
        "logs dir",
        "logs/keep.log 420 kept",
        "src dir",
        "src/link -> main.go",
        "src/main.go 420 package main",
        "src/sub dir",
        "src/sub/run.sh 493 #!/bin/sh\n",
      ]);
      // the same inputs give the same artifact (mtimes kept): pushing again is a no-op
      const again = await jobSource(opts, local, session);
      assert.equal(again.context, source.context);
    } finally {
      await pulled.cleanup();
    }
  } finally {
    session.close();
  }
});

Deno.test("oci:// over TLS with basic auth; a Dockerfile outside the context travels along", async () => {
  const env = await testbed();
  await using tmp = await tempDir();
  const base = join(tmp.path, "ctx");
  await Deno.mkdir(base);
  await Deno.writeTextFile(join(base, "a.txt"), "A");
  await Deno.writeTextFile(join(base, ".dockerignore"), "b.txt\n");
  await Deno.writeTextFile(join(base, "b.txt"), "B");
  const outside = join(tmp.path, "Dockerfile.prod");
  await Deno.writeTextFile(outside, "FROM scratch\nCOPY a.txt /\n");
  const dest = ref(env, "basic", `k8s-ctx/tls-${crypto.randomUUID().slice(0, 8)}:v2`);
  const opts = options(
    [`--context=${base}`, `--dockerfile=${outside}`, `-d=${dest}`, ...cliFlags(env, "basic")],
    env.dockerConfigDir,
  );
  await using local = await prepareContext(base, { dockerfile: outside });
  const session = new RegistrySession(opts.registry);
  try {
    const source = await jobSource(opts, local, session);
    assert.equal(source.dockerfile, ".kaniko-deno/Dockerfile");
    await using pulled = await prepareContext(source.context, {
      registry: opts.registry,
      dockerfile: source.dockerfile,
    });
    assert.equal(
      await Deno.readTextFile(join(pulled.root, ".kaniko-deno/Dockerfile")),
      "FROM scratch\nCOPY a.txt /\n",
    );
    await assert.rejects(Deno.stat(join(pulled.root, "b.txt")), Deno.errors.NotFound);
    // the ignore file next to the Dockerfile hides .kaniko-deno from COPY, and keeps the rules
    assert.equal(pulled.ignoreFile, join(pulled.root, ".kaniko-deno/Dockerfile.dockerignore"));
    assert.ok(pulled.ignore.matches(".kaniko-deno/Dockerfile"));
    assert.ok(pulled.ignore.matches("b.txt"));
    assert.ok(!pulled.ignore.matches("a.txt"));
  } finally {
    session.close();
  }
});

Deno.test("oci:// refuses an index, a missing digest and malformed references", async () => {
  const env = await testbed();
  const registry = options(["--no-push", ...cliFlags(env, "plain")], env.dockerConfigDir).registry;
  const index = `oci://${ref(env, "plain", `library/busybox@${env.busybox.indexDigest}`)}`;
  await assert.rejects(
    prepareContext(index, { registry }),
    (e: unknown) =>
      e instanceof KanikoError && /is an image index, not a context artifact/.test(e.message),
  );
  const absent = `oci://${ref(env, "plain", `k8s-ctx/none@sha256:${"0".repeat(64)}`)}`;
  await assert.rejects(prepareContext(absent, { registry }), KanikoError);
  assert.deepEqual(parseContextSpec(`oci://reg.example:5000/a/b@sha256:${"1".repeat(64)}`), {
    kind: "oci",
    reference: `reg.example:5000/a/b@sha256:${"1".repeat(64)}`,
  });
  assert.throws(() => parseContextSpec("oci://"), UsageError);
  assert.throws(() => parseContextSpec("oci://Bad Ref"), UsageError);
});
