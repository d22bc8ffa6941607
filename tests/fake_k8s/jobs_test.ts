/**
 * The fake cluster's Job lifecycle: scheduling by nodeSelector (and Unschedulable pods), pods
 * run by the simulated node with the container's args, env, secret env and secret volumes,
 * termination messages, Job conditions, backoffLimit, activeDeadlineSeconds, pod logs, and
 * delete propagation that kills the running process.
 */
import assert from "node:assert/strict";
import { type FakeK8s, type KObject, startFakeK8s } from "../_fake_k8s/mod.ts";
import { condition, getJson, jobBody, postJob, SCRIPT_EXECUTOR, waitFor } from "./_helpers.ts";

const NODES = [
  { name: "amd-1", platform: "linux/amd64" },
  { name: "arm-1", platform: "linux/arm64" },
  { name: "arm-2", platform: "linux/arm64", ready: false },
];

async function job(k8s: FakeK8s, ns: string, name: string): Promise<KObject> {
  return (await getJson(k8s, `/apis/batch/v1/namespaces/${ns}/jobs/${name}`)).body;
}

// deno-lint-ignore no-explicit-any
async function pods(k8s: FakeK8s, ns: string, jobName: string): Promise<any[]> {
  return (await getJson(k8s, `/api/v1/namespaces/${ns}/pods?labelSelector=job-name%3D${jobName}`))
    .body.items;
}

function finished(k8s: FakeK8s, ns: string, name: string, type: "Complete" | "Failed") {
  return waitFor(
    `job ${name} ${type}`,
    async () => condition(await job(k8s, ns, name), type) && job(k8s, ns, name),
  );
}

Deno.test("fake k8s: a Job runs on a matching node and reports its termination message", async () => {
  await using k8s = await startFakeK8s({ nodes: NODES, executor: SCRIPT_EXECUTOR });
  k8s.createSecret(
    "b",
    "regcred",
    { ".dockerconfigjson": '{"auths":{}}' },
    "kubernetes.io/dockerconfigjson",
  );
  k8s.createSecret("b", "env", { msg: "from-secret" });
  const body = jobBody("build-arm64", {
    nodeSelector: { "kubernetes.io/os": "linux", "kubernetes.io/arch": "arm64" },
    args: [
      "--digest-file=/dev/termination-log",
      "--context=dir:///workspace/ctx",
      "--flag",
      "/kaniko/.docker/x",
    ],
    env: {
      DIGEST: "sha256:0123",
      DOCKER_CONFIG: "/kaniko/.docker",
      CAT: "/kaniko/.docker/config.json",
    },
    extraEnv: [{ name: "MSG_ENV", valueFrom: { secretKeyRef: { name: "env", key: "msg" } } }],
    volumes: [
      {
        name: "docker-config",
        secret: {
          secretName: "regcred",
          items: [{ key: ".dockerconfigjson", path: "config.json" }],
        },
      },
      { name: "workspace", emptyDir: {} },
    ],
    volumeMounts: [
      { name: "docker-config", mountPath: "/kaniko/.docker" },
      { name: "workspace", mountPath: "/workspace" },
    ],
  });
  const created = await postJob(k8s, "b", body);
  assert.equal(created.status, 201);
  const j = await created.json();
  assert.equal(j.spec.backoffLimit, 0);
  assert.equal(j.spec.template.metadata.labels["batch.kubernetes.io/job-name"], "build-arm64");
  assert.equal(j.spec.template.spec.containers[0].terminationMessagePath, "/dev/termination-log");
  const done = await finished(k8s, "b", "build-arm64", "Complete");
  assert.equal(done.status.succeeded, 1);
  assert.equal(done.status.active, undefined);
  assert.ok(done.status.startTime && done.status.completionTime);
  assert.ok(condition(done, "SuccessCriteriaMet"));
  assert.equal(condition(done, "Complete").reason, "CompletionsReached");
  const [pod] = await pods(k8s, "b", "build-arm64");
  assert.match(pod.metadata.name, /^build-arm64-[a-z0-9]{5}$/);
  assert.equal(pod.metadata.labels["controller-uid"], j.metadata.uid);
  assert.equal(pod.metadata.labels["batch.kubernetes.io/job-name"], "build-arm64");
  assert.equal(pod.metadata.ownerReferences[0].uid, j.metadata.uid);
  assert.equal(pod.spec.nodeName, "arm-1", "the Ready arm64 node");
  assert.equal(pod.status.phase, "Succeeded");
  const term = pod.status.containerStatuses[0].state.terminated;
  assert.equal(term.exitCode, 0);
  assert.equal(term.reason, "Completed");
  assert.equal(term.message, "sha256:0123");
  assert.ok(term.startedAt && term.finishedAt);
  const log = await k8s.fetch(`/api/v1/namespaces/b/pods/${pod.metadata.name}/log`);
  const text = await log.text();
  assert.match(
    text,
    /^args: --digest-file=\/tmp\/fake-k8s-build-arm64-[^ ]+\/termination-log --context=dir:\/\/\/tmp\/fake-k8s-[^ ]+\/volumes\/workspace\/ctx /m,
  );
  assert.match(
    text,
    /--flag \/tmp\/fake-k8s-[^ ]+\/volumes\/docker-config\/x$/m,
    "mount paths rewritten",
  );
  assert.doesNotMatch(text, /--isolation/, "only appended for our CLI");
  assert.match(text, /^env: from-secret$/m);
  assert.match(text, /^\{"auths":\{\}\}$/m, "the secret volume's item, decoded");
  const tail = await k8s.fetch(`/api/v1/namespaces/b/pods/${pod.metadata.name}/log?tailLines=1`);
  assert.equal(await tail.text(), '{"auths":{}}\n');
});

Deno.test("fake k8s: a failing pod with backoffLimit 0 fails the Job (BackoffLimitExceeded)", async () => {
  await using k8s = await startFakeK8s({ nodes: NODES, executor: SCRIPT_EXECUTOR, tls: false });
  const body = jobBody("fails", {
    args: ["--x"],
    env: { EXIT: "3" },
    terminationMessagePolicy: "FallbackToLogsOnError",
  });
  assert.equal((await postJob(k8s, "b", body)).status, 201);
  const done = await finished(k8s, "b", "fails", "Failed");
  assert.equal(done.status.failed, 1);
  assert.equal(condition(done, "Failed").reason, "BackoffLimitExceeded");
  assert.equal(condition(done, "FailureTarget").reason, "BackoffLimitExceeded");
  assert.equal(condition(done, "Complete"), undefined);
  const all = await pods(k8s, "b", "fails");
  assert.equal(all.length, 1, "backoffLimit 0: no retry");
  const term = all[0].status.containerStatuses[0].state.terminated;
  assert.deepEqual([all[0].status.phase, term.exitCode, term.reason], ["Failed", 3, "Error"]);
  assert.match(term.message, /^args: .*\nenv: $/, "FallbackToLogsOnError: the log's tail");
});

Deno.test("fake k8s: backoffLimit 1 retries once with a new pod", async () => {
  await using k8s = await startFakeK8s({
    nodes: NODES,
    executor: SCRIPT_EXECUTOR,
    tls: false,
    retryDelayMs: 50,
  });
  assert.equal(
    (await postJob(k8s, "b", jobBody("retry", { env: { EXIT: "1" }, backoffLimit: 1 }))).status,
    201,
  );
  const done = await finished(k8s, "b", "retry", "Failed");
  assert.equal(done.status.failed, 2);
  assert.equal((await pods(k8s, "b", "retry")).length, 2);
});

Deno.test("fake k8s: a pod no node fits stays Pending, Unschedulable, until a node appears", async () => {
  await using k8s = await startFakeK8s({ nodes: NODES, executor: SCRIPT_EXECUTOR, tls: false });
  const body = jobBody("s390x", {
    nodeSelector: { "kubernetes.io/os": "linux", "kubernetes.io/arch": "s390x" },
  });
  assert.equal((await postJob(k8s, "b", body)).status, 201);
  const [pod] = await waitFor(
    "the pod",
    () => pods(k8s, "b", "s390x").then((p) => p.length ? p : undefined),
  );
  const cond = await waitFor(
    "PodScheduled=False",
    async () =>
      (await pods(k8s, "b", "s390x"))[0].status.conditions?.find((c: { type: string }) =>
        c.type === "PodScheduled"
      ),
  );
  assert.equal(pod.status.phase, "Pending");
  assert.deepEqual([cond.status, cond.reason], ["False", "Unschedulable"]);
  assert.equal(
    cond.message,
    "0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, " +
      "2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: " +
      "3 Preemption is not helpful for scheduling.",
  );
  assert.equal((await job(k8s, "b", "s390x")).status.active, 1);
  k8s.cluster.addNode({ name: "z-1", platform: "linux/s390x" });
  await finished(k8s, "b", "s390x", "Complete");
  assert.equal((await pods(k8s, "b", "s390x"))[0].spec.nodeName, "z-1");
});

Deno.test("fake k8s: activeDeadlineSeconds fails the Job with DeadlineExceeded and kills the pod", async () => {
  await using k8s = await startFakeK8s({ nodes: NODES, executor: SCRIPT_EXECUTOR, tls: false });
  const body = jobBody("slow", { env: { SLEEP: "30" }, activeDeadlineSeconds: 1 });
  assert.equal((await postJob(k8s, "b", body)).status, 201);
  const done = await finished(k8s, "b", "slow", "Failed");
  assert.equal(condition(done, "Failed").reason, "DeadlineExceeded");
  assert.equal(condition(done, "Failed").message, "Job was active longer than specified deadline");
  assert.deepEqual(await pods(k8s, "b", "slow"), [], "the running pod was deleted");
});

async function runningPod(k8s: FakeK8s, name: string, dir: string) {
  const pidfile = `${dir}/${name}.pid`;
  assert.equal(
    (await postJob(k8s, "d", jobBody(name, { env: { SLEEP: "60", PIDFILE: pidfile } }))).status,
    201,
  );
  const pid = Number(
    await waitFor("the process", () => Deno.readTextFile(pidfile).catch(() => "")),
  );
  await waitFor("Running", async () => (await pods(k8s, "d", name))[0]?.status.phase === "Running");
  assert.ok(alive(pid));
  return pid;
}

function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) [ZX]/.test(stat);
  } catch {
    return false;
  }
}

Deno.test("fake k8s: deleting a Job propagates to its pods (Background, Foreground) or orphans them", async () => {
  await using k8s = await startFakeK8s({
    nodes: NODES,
    executor: SCRIPT_EXECUTOR,
    tls: false,
    maxGraceSeconds: 2,
  });
  const dir = await Deno.makeTempDir();
  try {
    const bg = await runningPod(k8s, "bg", dir);
    const del = await k8s.fetch("/apis/batch/v1/namespaces/d/jobs/bg", {
      method: "DELETE",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        kind: "DeleteOptions",
        apiVersion: "v1",
        propagationPolicy: "Background",
      }),
    });
    const st = await del.json();
    assert.deepEqual([del.status, st.kind, st.status, st.details.name], [
      200,
      "Status",
      "Success",
      "bg",
    ]);
    assert.equal((await getJson(k8s, "/apis/batch/v1/namespaces/d/jobs/bg")).status, 404);
    await waitFor("the pod gone", async () => (await pods(k8s, "d", "bg")).length === 0);
    assert.ok(!alive(bg), "the process was killed");

    const fg = await runningPod(k8s, "fg", dir);
    const fdel = await k8s.fetch(
      "/apis/batch/v1/namespaces/d/jobs/fg?propagationPolicy=Foreground",
      { method: "DELETE" },
    );
    const marked = await fdel.json();
    assert.equal(marked.kind, "Job");
    assert.ok(marked.metadata.deletionTimestamp);
    assert.deepEqual(marked.metadata.finalizers, ["foregroundDeletion"]);
    await waitFor(
      "the job gone",
      async () => (await getJson(k8s, "/apis/batch/v1/namespaces/d/jobs/fg")).status === 404,
    );
    assert.equal((await pods(k8s, "d", "fg")).length, 0);
    assert.ok(!alive(fg));

    const orphan = await runningPod(k8s, "orphan", dir);
    assert.equal(
      (await k8s.fetch("/apis/batch/v1/namespaces/d/jobs/orphan", { method: "DELETE" })).status,
      200,
    );
    const left = await pods(k8s, "d", "orphan");
    assert.equal(left.length, 1, "Orphan (batch/v1's default) keeps the pod");
    assert.deepEqual(left[0].metadata.ownerReferences, []);
    assert.ok(alive(orphan));
    assert.deepEqual(k8s.cluster.deletedJobs.map((d) => d.propagationPolicy), [
      "Background",
      "Foreground",
      "Orphan",
    ]);
  } finally {
    await k8s.close();
    await Deno.remove(dir, { recursive: true });
  }
});
