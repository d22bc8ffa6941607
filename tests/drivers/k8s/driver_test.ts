/**
 * The k8s driver end to end against the stub API server and the test bed's real registry: the
 * stub "runs" each Job by copying the test bed's busybox image of the Job's --custom-platform to
 * the Job's --destination and answering with its digest as the termination message.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { k8sDriver } from "../../../drivers/k8s/mod.ts";
import type { MultiPlatformBuild } from "../../../drivers/types.ts";
import { parseInvocation } from "../../../lib/cli/invocation.ts";
import type { BuildOptions } from "../../../lib/cli/options.ts";
import { prepareContext } from "../../../lib/context/mod.ts";
import { KanikoError } from "../../../lib/errors.ts";
import { copyImage } from "../../../lib/oci/copy.ts";
import { OCI } from "../../../lib/oci/media_types.ts";
import { parseReference } from "../../../lib/registry/reference.ts";
import { RegistrySession } from "../../../lib/registry/session.ts";
import { cliFlags, ref, tempDir, testbed } from "../../_testbed.ts";
import { finishedJob, type Obj, startStub, type Stub, target, terminatedPod } from "./_stub.ts";

const node = (arch: string) => ({
  metadata: {
    name: `n-${arch}`,
    labels: { "kubernetes.io/os": "linux", "kubernetes.io/arch": arch },
  },
  status: { conditions: [{ type: "Ready", status: "True" }] },
});

async function kubeconfig(dir: string, stub: Stub): Promise<string> {
  const file = join(dir, "kubeconfig");
  await Deno.writeTextFile(
    file,
    `current-context: t
clusters: [{ name: c, cluster: { server: "${stub.url}" } }]
users: [{ name: u, user: { token: stub-token } }]
contexts: [{ name: t, context: { cluster: c, user: u, namespace: builds } }]
`,
  );
  return file;
}

Deno.test("k8s driver: preflight, one Job per platform, remote children, Jobs deleted", async () => {
  const env = await testbed();
  await using tmp = await tempDir();
  const registry = (parseInvocation(["--no-push", ...cliFlags(env, "plain")], {
    env: (n) => n === "DOCKER_CONFIG" ? env.dockerConfigDir : undefined,
  }) as { options: BuildOptions }).options.registry;
  const session = new RegistrySession(registry);
  const byArch = new Map(env.busybox.arches.map((a) => [a.platform.architecture, a.digest]));
  async function runJob(job: Obj, s: Stub) {
    const args: string[] = job.spec.template.spec.containers[0].args;
    const platform = args.find((a) => a.startsWith("--custom-platform="))!.split("=")[1];
    const dest = parseReference(args.find((a) => a.startsWith("--destination="))!.slice(14));
    const src = session.repository(
      parseReference(ref(env, "plain", `library/busybox@${byArch.get(platform.split("/")[1])}`)),
      "pull",
    );
    const result = await copyImage(src, session.repository(dest, "push"), { tags: [dest.tag!] });
    s.put("pods", terminatedPod(job, 0, result.manifest.digest));
    s.put("jobs", finishedJob(job, "Complete"));
  }
  await using stub = startStub({
    token: "stub-token",
    nodes: [node("amd64"), node("arm64"), node("s390x")],
    onJobCreated: (job, s) => void runJob(job, s).catch((e) => console.error(e)),
  });
  const base = join(tmp.path, "ctx");
  await Deno.mkdir(base);
  await Deno.writeTextFile(join(base, "Dockerfile"), "FROM busybox\nRUN true\n");
  const dest = ref(env, "plain", `k8s-driver/app-${crypto.randomUUID().slice(0, 8)}:1`);
  const opts = (parseInvocation([
    `--context=${base}`,
    `-d=${dest}`,
    "--driver=k8s",
    `--kubeconfig=${await kubeconfig(tmp.path, stub)}`,
    "--executor-image=executor:test",
    ...cliFlags(env, "plain"),
  ], { env: (n) => n === "DOCKER_CONFIG" ? env.dockerConfigDir : undefined }) as {
    options: BuildOptions;
  }).options;
  await using context = await prepareContext(base);
  const build = {
    opts,
    context,
    file: "Dockerfile",
    targets: [target("linux/arm64"), target("linux/s390x")],
    format: "oci",
  } as unknown as MultiPlatformBuild;
  const ctx = { session, signal: new AbortController().signal };
  try {
    await k8sDriver.preflight(build, ctx);
    const children = await k8sDriver.build(build, ctx);
    const repo = parseReference(dest).name;
    assert.deepEqual(
      children.map((c) => c.kind === "remote" && [c.target.platform, c.repository, c.digest]),
      [
        ["linux/arm64", repo, byArch.get("arm64")],
        ["linux/s390x", repo, byArch.get("s390x")],
      ],
    );
    for (const c of children) {
      assert.ok(c.kind === "remote" && c.mediaType === OCI.manifest && c.size > 100);
    }
    assert.equal(stub.created.length, 2);
    const args: string[] = stub.created[0].spec.template.spec.containers[0].args;
    assert.match(args[0], new RegExp(`^--context=oci://${repo}@sha256:`));
    assert.equal(stub.created[0].spec.template.spec.containers[0].image, "executor:test");
    assert.deepEqual(stub.deleted.map((d) => d.replace(/kaniko-\w+-/, "")).sort(), [
      "linux-arm64?Background",
      "linux-s390x?Background",
    ]);
    // a platform without nodes fails the preflight, before any Job
    const arm7 = { ...build, targets: [target("linux/arm/v7"), target("linux/amd64")] };
    await assert.rejects(
      k8sDriver.preflight(arm7 as MultiPlatformBuild, ctx),
      (e: unknown) =>
        e instanceof KanikoError &&
        e.message.startsWith(
          "no Ready Kubernetes node for linux/arm/v7 (Ready nodes: 1 × linux/amd64",
        ),
    );
    assert.equal(stub.created.length, 2);
  } finally {
    session.close();
  }
});

Deno.test("k8s driver: a 403 on nodes names the ClusterRole; --no-push is refused", async () => {
  await using tmp = await tempDir();
  await using stub = startStub({ forbidNodes: true });
  const opts = (parseInvocation([
    "-d=reg.example/app:1",
    "--driver=k8s",
    `--kubeconfig=${await kubeconfig(tmp.path, stub)}`,
  ], { env: () => undefined }) as { options: BuildOptions }).options;
  const build = { opts, targets: [target("linux/arm64")] } as unknown as MultiPlatformBuild;
  const ctx = { session: new RegistrySession(opts.registry), signal: new AbortController().signal };
  await assert.rejects(k8sDriver.preflight(build, ctx), (e: unknown) => {
    assert.ok(e instanceof KanikoError);
    assert.match(e.message, /list nodes: nodes is forbidden: .* \(403\)$/);
    assert.match(e.hint ?? "", /ClusterRole kaniko-deno-nodes of deploy\/rbac.yaml/);
    return true;
  });
  // without the node check nothing is listed
  await k8sDriver.preflight({ ...build, opts: { ...opts, requireNativeNodes: false } }, ctx);
  assert.equal(stub.requests.filter((r) => r.includes("nodes")).length, 1);
  const noPush = { ...build, opts: { ...opts, noPush: true } };
  await assert.rejects(
    k8sDriver.preflight(noPush, ctx),
    /--driver=k8s pushes .* needs --destination/,
  );
  ctx.session.close();
});
