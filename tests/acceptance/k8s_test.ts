/**
 * End to end through the k8s driver: `cli.ts --driver=k8s --multi-platform=… --publish-index`
 * against our fake Kubernetes API server (tests/_fake_k8s), whose simulated nodes (linux/amd64
 * and linux/arm64) run each Job by invoking our CLI locally with the Job's args, env and the
 * dockerconfigjson Secret mounted as files. The arm64 node's RUN steps go through
 * qemu-user-static registered by this test harness (never by the executor). Checks: one Job per
 * platform with the right nodeSelector, each pod on a node of its architecture, an index with
 * both children and the right platforms, the RUN output of each child from its own
 * architecture, every Job deleted at the end; a platform without nodes fails before any Job
 * is created (with exec-plugin and client-certificate kubeconfigs); a failing RUN fails the build
 * with the pod's log and the Job is deleted; watches cut mid-build (and a 410 after compaction)
 * are resumed, from the last resourceVersion seen. `FAKE_K8S_DEBUG=1` prints the pods' logs.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { readTar } from "../../lib/tar/mod.ts";
import { driverRules, execPlugin, type FakeK8s, startFakeK8s } from "../_fake_k8s/mod.ts";
import { registerQemu } from "../_fake_k8s/qemu.ts";
import { cliFlags, ref, regFetch, skopeo, tempDir, testbed, type TestbedEnv } from "../_testbed.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const NS = "build";
const SA = `system:serviceaccount:${NS}:kaniko-builder`;
const SA_TOKEN = "kaniko-builder-token";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const ACCEPT = [
  OCI_INDEX,
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");

/** A fake cluster of one amd64 and one arm64 node, our ServiceAccount and the registry Secret. */
async function cluster(env: TestbedEnv): Promise<FakeK8s> {
  const k8s = await startFakeK8s({
    nodes: [{ name: "node-amd64", platform: "linux/amd64" }, {
      name: "node-arm64",
      platform: "linux/arm64",
    }],
    auth: { tokens: { [SA_TOKEN]: SA }, users: { [SA]: { rules: driverRules(NS) } } },
    onLog: Deno.env.get("FAKE_K8S_DEBUG")
      ? (pod, text) => console.error(`[${pod}] ${text.trimEnd()}`)
      : undefined,
  });
  const dockerConfig = await Deno.readTextFile(join(env.dockerConfigDir, "config.json"));
  k8s.createSecret(
    NS,
    "regcred",
    { ".dockerconfigjson": dockerConfig },
    "kubernetes.io/dockerconfigjson",
  );
  return k8s;
}

async function cli(args: string[], env: TestbedEnv) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(ROOT, "cli.ts"), ...args],
    env: { NO_COLOR: "1", DOCKER_CONFIG: env.dockerConfigDir },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

/** The text of `path` in a gzip layer blob of the token registry (undefined when absent). */
async function fileInLayer(env: TestbedEnv, repo: string, digest: string, path: string) {
  const r = await regFetch(env, "token", `/v2/${repo}/blobs/${digest}`, {
    scope: `repository:${repo}:pull`,
  });
  assert.equal(r.status, 200);
  const stream = new Blob([r.body as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new DecompressionStream("gzip"),
  );
  for await (const e of readTar(stream)) {
    if (e.header.name.replace(/^\.?\//, "") === path) {
      return (await new Response(e.body).text()).trim();
    }
    await e.body.cancel();
  }
  return undefined;
}

async function json(env: TestbedEnv, repo: string, reference: string) {
  const r = await regFetch(env, "token", `/v2/${repo}/manifests/${reference}`, {
    headers: { accept: ACCEPT },
    scope: `repository:${repo}:pull`,
  });
  assert.equal(r.status, 200, `${repo}@${reference}`);
  return JSON.parse(new TextDecoder().decode(r.body));
}

/** One Job per platform, pinned by nodeSelector, each pod on a node of its architecture; all deleted. */
async function assertJobs(k8s: FakeK8s) {
  const jobs = k8s.cluster.createdJobs;
  assert.equal(jobs.length, 2);
  const selectors = jobs.map((j) => j.spec.template.spec.nodeSelector).sort((a, b) =>
    a["kubernetes.io/arch"].localeCompare(b["kubernetes.io/arch"])
  );
  assert.deepEqual(selectors, [
    { "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64" },
    { "kubernetes.io/os": "linux", "kubernetes.io/arch": "arm64" },
  ]);
  for (const j of jobs) {
    const arch = j.spec.template.spec.nodeSelector["kubernetes.io/arch"];
    const pods = k8s.cluster.boundPods.filter((p) => p.job === j.metadata.name);
    assert.deepEqual(pods.map((p) => p.node), [`node-${arch}`], j.metadata.name);
    assert.ok(
      j.spec.template.spec.containers[0].args.includes("--digest-file=/dev/termination-log"),
    );
  }
  assert.deepEqual(k8s.cluster.store.list("jobs"), []);
  assert.deepEqual(
    k8s.cluster.deletedJobs.map((d) => d.name).sort(),
    jobs.map((j) => j.metadata.name).sort(),
  );
  const deadline = Date.now() + 20_000;
  while (k8s.cluster.store.list("pods").length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(k8s.cluster.store.list("pods"), [], "pods garbage-collected");
}

/** The index has both children with the right platforms; each child's RUN ran on its architecture. */
async function assertIndex(env: TestbedEnv, repo: string, dest: string) {
  const raw = await skopeo(["inspect", "--raw", `docker://${dest}`], { env, variant: "token" });
  assert.equal(raw.code, 0, raw.stderr);
  const index = JSON.parse(raw.stdout);
  assert.equal(index.mediaType, OCI_INDEX);
  assert.deepEqual(
    index.manifests.map((m: { platform: { os: string; architecture: string } }) =>
      `${m.platform.os}/${m.platform.architecture}`
    ),
    ["linux/amd64", "linux/arm64"],
  );
  const uname: Record<string, string> = { amd64: "x86_64", arm64: "aarch64" };
  for (const m of index.manifests) {
    const child = await json(env, repo, m.digest);
    const config = await regFetch(env, "token", `/v2/${repo}/blobs/${child.config.digest}`, {
      scope: `repository:${repo}:pull`,
    });
    const cfg = JSON.parse(new TextDecoder().decode(config.body));
    assert.equal(cfg.architecture, m.platform.architecture);
    const runLayer = child.layers.at(-2).digest;
    assert.equal(
      await fileInLayer(env, repo, runLayer, "arch.txt"),
      uname[m.platform.architecture],
    );
    assert.equal(
      await fileInLayer(env, repo, runLayer, "target.txt"),
      `linux/${m.platform.architecture}`,
    );
  }
}

Deno.test("k8s driver e2e: one Job per platform on the fake cluster, RUN on amd64 and (qemu) arm64, one index", async () => {
  const env = await testbed();
  const qemu = await registerQemu("linux/arm64");
  if ("skip" in qemu) {
    console.log(`skipped: arm64 RUN steps need qemu-user-static: ${qemu.skip}`);
    return;
  }
  await using _qemu = qemu;
  await using k8s = await cluster(env);
  await using dir = await tempDir("kaniko-k8s-e2e-");
  const ctx = join(dir.path, "ctx");
  await Deno.mkdir(ctx);
  await Deno.writeTextFile(join(ctx, "hello.txt"), "hello from the build context\n");
  await Deno.writeTextFile(
    join(ctx, "Dockerfile"),
    `FROM ${ref(env, "token", "library/busybox:latest")}\n` +
      "ARG TARGETPLATFORM\n" +
      'RUN uname -m > /arch.txt && echo "$TARGETPLATFORM" > /target.txt\n' +
      "COPY hello.txt /hello.txt\n",
  );
  const kubeconfig = await k8s.writeKubeconfig(
    join(dir.path, "kubeconfig"),
    { token: SA_TOKEN },
    NS,
  );
  const repo = `e2e/app-${crypto.randomUUID().slice(0, 8)}`;
  const dest = ref(env, "token", `${repo}:1`);
  const r = await cli([
    "--driver=k8s",
    "--multi-platform=linux/amd64,linux/arm64",
    "--publish-index",
    "-d",
    dest,
    "-c",
    ctx,
    `--kubeconfig=${kubeconfig}`,
    "--k8s-registry-secret=regcred",
    "--k8s-timeout=15m",
    ...cliFlags(env, "token"),
  ], env);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);

  await assertJobs(k8s);
  await assertIndex(env, repo, dest);
});

Deno.test("k8s driver e2e: a platform without nodes fails before any Job is created", async (t) => {
  const env = await testbed();
  await using k8s = await cluster(env);
  await using dir = await tempDir("kaniko-k8s-e2e-");
  await Deno.writeTextFile(
    join(dir.path, "Dockerfile"),
    `FROM ${ref(env, "token", "library/busybox:latest")}\nRUN echo hi > /hi.txt\n`,
  );
  const { cert, key } = await k8s.clientCertificate(SA);
  const kubeconfigs = {
    "exec credential plugin": await k8s.writeKubeconfig(
      join(dir.path, "kubeconfig-exec"),
      { exec: { command: await execPlugin(dir.path, SA_TOKEN) } },
      NS,
    ),
    "client certificate": await k8s.writeKubeconfig(
      join(dir.path, "kubeconfig-cert"),
      { clientCertificate: cert, clientKey: key, inline: true },
      NS,
    ),
  };
  for (const [how, kubeconfig] of Object.entries(kubeconfigs)) {
    await t.step(how, async () => {
      const before = k8s.requests.length;
      const r = await cli([
        "--driver=k8s",
        "--multi-platform=linux/amd64,linux/s390x",
        "--publish-index",
        "-d",
        ref(env, "token", "e2e/app:1"),
        "-c",
        dir.path,
        `--kubeconfig=${kubeconfig}`,
        "--k8s-registry-secret=regcred",
        ...cliFlags(env, "token"),
      ], env);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /linux\/s390x/);
      assert.doesNotMatch(r.stderr, /linux\/amd64[^\n]*(no Ready|missing)/);
      const mine = k8s.requests.slice(before);
      assert.ok(
        mine.some((l) => l.startsWith("GET /api/v1/nodes") && l.endsWith(SA)),
        mine.join("\n"),
      );
      assert.ok(!mine.some((l) => l.startsWith("POST")), "no Job created");
    });
  }
  assert.equal(k8s.cluster.createdJobs.length, 0);
  assert.ok(
    (await Deno.readTextFile(join(dir.path, "fake-k8s-credential.sh.calls"))).includes("call"),
  );
});

/** A context whose Dockerfile is `FROM busybox` plus `body`. */
async function context(env: TestbedEnv, dir: string, body: string): Promise<string> {
  const ctx = join(dir, "ctx");
  await Deno.mkdir(ctx, { recursive: true });
  await Deno.writeTextFile(
    join(ctx, "Dockerfile"),
    `FROM ${ref(env, "token", "library/busybox:latest")}\n${body}`,
  );
  return ctx;
}

function amd64Build(env: TestbedEnv, ctx: string, kubeconfig: string, repo: string) {
  return cli([
    "--driver=k8s",
    "--multi-platform=linux/amd64",
    "--publish-index",
    "-d",
    ref(env, "token", `${repo}:1`),
    "-c",
    ctx,
    `--kubeconfig=${kubeconfig}`,
    "--k8s-registry-secret=regcred",
    ...cliFlags(env, "token"),
  ], env);
}

Deno.test("k8s driver e2e: a failing RUN fails the build with the pod's reason; the Job is deleted", async () => {
  const env = await testbed();
  await using k8s = await cluster(env);
  await using dir = await tempDir("kaniko-k8s-e2e-");
  const ctx = await context(env, dir.path, 'RUN echo "about to fail" && exit 3\n');
  const kubeconfig = await k8s.writeKubeconfig(join(dir.path, "kc"), { token: SA_TOKEN }, NS);
  const r = await amd64Build(env, ctx, kubeconfig, `e2e/fail-${crypto.randomUUID().slice(0, 8)}`);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /linux\/amd64: Job kaniko-[a-z0-9]+-linux-amd64 failed/);
  assert.match(r.stderr, /about to fail/, "the pod log is reported");
  assert.equal(k8s.cluster.createdJobs.length, 1);
  assert.deepEqual(k8s.cluster.store.list("jobs"), [], "the failed Job was deleted");
  assert.ok(
    k8s.requests.some((l) => /^GET \/api\/v1\/namespaces\/build\/pods\/[^/]+\/log\?/.test(l)),
  );
});

/** An amd64 build during which the job and pod watches are cut, then the window compacted. */
async function buildWithCuts(env: TestbedEnv) {
  await using k8s = await cluster(env);
  await using dir = await tempDir("kaniko-k8s-e2e-");
  const ctx = await context(env, dir.path, "RUN sleep 3 && echo done > /done.txt\n");
  const kubeconfig = await k8s.writeKubeconfig(join(dir.path, "kc"), { token: SA_TOKEN }, NS);
  const jobWatches = () => k8s.hub.history.filter((w) => w.resource === "jobs");
  const until = async (what: string, fn: () => boolean) => {
    const end = Date.now() + 30_000;
    while (!fn()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const cutter = (async () => {
    // 1. a jobs watch that has sent events past its starting resourceVersion, the last one long
    // enough ago to have been read (a cut drops what the client has not read yet): break it
    await until(
      "a jobs watch with events",
      () =>
        jobWatches().some((w) =>
          !w.end && Number(w.lastRv) > Number(w.from ?? 0) && Date.now() - w.lastSentAt! > 300
        ),
    );
    const seen = jobWatches().length;
    k8s.cutWatches("error");
    // 2. once resumed: a write, then compaction, then a clean end: the resumed RV is too old
    await until("the resumed jobs watch", () => jobWatches().length > seen);
    k8s.createSecret(NS, "bump", { k: "v" });
    k8s.compact();
    k8s.cutWatches("close");
  })();
  const r = await amd64Build(env, ctx, kubeconfig, `e2e/resume-${crypto.randomUUID().slice(0, 8)}`);
  await cutter;
  const watches = jobWatches();
  return { r, watches, jobsLeft: k8s.cluster.store.list("jobs") };
}

Deno.test("k8s driver e2e: watches cut mid-build and a 410 (re-list) do not break the build", async () => {
  const { r, watches, jobsLeft } = await buildWithCuts(await testbed());
  assert.equal(r.code, 0, r.stderr);
  const cut = watches.findIndex((w) => w.end === "cut-error");
  assert.ok(cut >= 0 && watches[cut + 1], JSON.stringify(watches));
  const expired = watches.findIndex((w) => w.end === "expired");
  assert.ok(expired > cut, "the compacted window gave a 410");
  assert.ok(
    Number(watches[expired + 1]?.from) > Number(watches[expired].from),
    "re-listed after 410",
  );
  assert.deepEqual(jobsLeft, []);
});

Deno.test("k8s driver e2e: a dropped watch resumes from the last resourceVersion it saw", async () => {
  const { watches } = await buildWithCuts(await testbed());
  const cut = watches.findIndex((w) => w.end === "cut-error");
  assert.ok(cut >= 0 && watches[cut].lastRv && watches[cut + 1], JSON.stringify(watches));
  assert.ok(
    Number(watches[cut + 1].from) >= Number(watches[cut].lastRv),
    `the watch cut after resourceVersion ${watches[cut].lastRv} resumed from ${
      watches[cut + 1].from
    }`,
  );
});

Deno.test("k8s driver e2e: with --require-native-nodes=false a Job no node fits times out, named, and is deleted", async () => {
  const env = await testbed();
  await using k8s = await cluster(env);
  await using dir = await tempDir("kaniko-k8s-e2e-");
  const ctx = await context(env, dir.path, "RUN true\n");
  const kubeconfig = await k8s.writeKubeconfig(join(dir.path, "kc"), { token: SA_TOKEN }, NS);
  const r = await cli([
    "--driver=k8s",
    "--multi-platform=linux/s390x",
    "--publish-index",
    "--require-native-nodes=false",
    "--k8s-timeout=4s",
    "-d",
    ref(env, "token", `e2e/pending-${crypto.randomUUID().slice(0, 8)}:1`),
    "-c",
    ctx,
    `--kubeconfig=${kubeconfig}`,
    ...cliFlags(env, "token"),
  ], env);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /linux\/s390x/);
  // the pod's PodScheduled=False condition, as the driver reports it (then the driver's timeout
  // or the Job's activeDeadlineSeconds ends the build, whichever comes first)
  assert.match(
    r.stderr,
    /Unschedulable: 0\/2 nodes are available: 2 node\(s\) didn't match Pod's node affinity\/selector/,
  );
  assert.equal(k8s.cluster.createdJobs.length, 1);
  assert.deepEqual(k8s.cluster.store.list("jobs"), []);
});
