import assert from "node:assert/strict";
import { KubeClient } from "../../../drivers/k8s/client.ts";
import { buildSelector, jobManifest } from "../../../drivers/k8s/jobs.ts";
import { JobSchema } from "../../../drivers/k8s/resources.ts";
import { type JobRun, runJobs } from "../../../drivers/k8s/run.ts";
import { watchResources } from "../../../drivers/k8s/watch.ts";
import { KanikoError } from "../../../lib/errors.ts";
import { finishedJob, type Obj, startStub, type Stub, terminatedPod } from "./_stub.ts";

const DIGEST = "sha256:" + "ab".repeat(32);

function client(stub: Stub, token = "t0ken"): KubeClient {
  return new KubeClient({
    server: stub.url,
    source: "test",
    namespace: "builds",
    tls: { insecure: false },
    auth: { kind: "token", token },
  });
}

function runs(buildId: string, platforms: string[]): JobRun[] {
  return platforms.map((platform) => {
    const [os, architecture, variant] = platform.split("/");
    const slug = platform.replaceAll("/", "-");
    return {
      platform,
      slug,
      manifest: jobManifest({
        buildId,
        namespace: "builds",
        target: { platform, slug, parsed: { os, architecture, variant } },
        image: "executor:test",
        args: ["--custom-platform=" + platform],
        deadlineSeconds: 60,
      }),
    };
  });
}

/** Completes each Job: pod Running, then terminated with the digest, then the Job Complete. */
function succeed(job: Obj, stub: Stub) {
  const pod = terminatedPod(job, 0, DIGEST);
  stub.put("pods", { ...pod, status: { phase: "Running" } });
  setTimeout(() => {
    stub.put("pods", pod);
    stub.put("jobs", finishedJob(job, "Complete"));
  }, 10);
}

Deno.test("runJobs: parallel Jobs, digests from termination messages, every Job deleted", async () => {
  await using stub = startStub({ token: "t0ken", onJobCreated: succeed });
  const kube = client(stub);
  const id = "b1";
  const results = await runJobs(runs(id, ["linux/amd64", "linux/arm64"]), {
    client: kube,
    buildId: id,
    selector: buildSelector(id),
    timeout: 10_000,
    signal: new AbortController().signal,
  });
  kube.close();
  assert.deepEqual(results, [
    { platform: "linux/amd64", digest: DIGEST },
    { platform: "linux/arm64", digest: DIGEST },
  ]);
  assert.deepEqual(stub.deleted.sort(), [
    "kaniko-b1-linux-amd64?Background",
    "kaniko-b1-linux-arm64?Background",
  ]);
  assert.ok(stub.requests.some((r) => r.includes("watch=1") && r.includes("allowWatchBookmarks")));
});

Deno.test("runJobs: a failed Job reports exit code, the last log line, and is deleted", async () => {
  await using stub = startStub({
    onJobCreated(job, s) {
      const pod = terminatedPod(job, 3, "error: RUN step failed");
      s.logs.set(pod.metadata.name, "step 1\nerror: Dockerfile:3: RUN exited with 3\n");
      s.put("pods", pod);
      s.put("jobs", finishedJob(job, "Failed", "BackoffLimitExceeded"));
    },
  });
  const kube = client(stub);
  await assert.rejects(
    runJobs(runs("b2", ["linux/arm64"]), {
      client: kube,
      buildId: "b2",
      selector: buildSelector("b2"),
      timeout: 10_000,
      signal: new AbortController().signal,
    }),
    (e: unknown) => {
      assert.ok(e instanceof KanikoError);
      assert.match(e.message, /linux\/arm64: Job kaniko-b2-linux-arm64 failed: exit code 3/);
      assert.match(e.message, /Dockerfile:3: RUN exited with 3/);
      assert.equal(e.exitCode, 3);
      return true;
    },
  );
  kube.close();
  assert.deepEqual(stub.deleted, ["kaniko-b2-linux-arm64?Background"]);
  assert.ok(stub.requests.some((r) => r.includes("/log?container=executor&tailLines=50")));
});

Deno.test("runJobs: the timeout names the waiting platform and deletes the Job", async () => {
  await using stub = startStub({
    onJobCreated(job, s) {
      s.put("pods", {
        metadata: { name: "p1", labels: { ...job.spec.template.metadata.labels } },
        status: {
          phase: "Pending",
          conditions: [{
            type: "PodScheduled",
            status: "False",
            reason: "Unschedulable",
            message: "0/2 nodes are available",
          }],
        },
      });
    },
  });
  const kube = client(stub);
  await assert.rejects(
    runJobs(runs("b3", ["linux/s390x"]), {
      client: kube,
      buildId: "b3",
      selector: buildSelector("b3"),
      timeout: 400,
      signal: new AbortController().signal,
    }),
    /did not finish within 0s: linux\/s390x \(Pending: Unschedulable: 0\/2 nodes are available\)/,
  );
  kube.close();
  assert.deepEqual(stub.deleted, ["kaniko-b3-linux-s390x?Background"]);
});

Deno.test("runJobs: an abort (Ctrl-C) deletes the Jobs already created", async () => {
  await using stub = startStub();
  const kube = client(stub);
  const abort = new AbortController();
  setTimeout(() => abort.abort(new KanikoError("interrupted by SIGINT", { exitCode: 130 })), 200);
  await assert.rejects(
    runJobs(runs("b4", ["linux/amd64", "linux/arm64"]), {
      client: kube,
      buildId: "b4",
      selector: buildSelector("b4"),
      timeout: 10_000,
      signal: abort.signal,
    }),
    /interrupted by SIGINT/,
  );
  kube.close();
  assert.equal(stub.deleted.length, 2);
});

Deno.test("watch: a dropped stream resumes from the last resourceVersion; 410 re-lists", async () => {
  await using stub = startStub();
  const kube = client(stub);
  const seen: string[] = [];
  const stop = new AbortController();
  const labels = { app: "x" };
  stub.put("jobs", { metadata: { name: "a", labels } });
  const done = watchResources({
    client: kube,
    path: "/apis/batch/v1/namespaces/builds/jobs",
    resource: "jobs.batch",
    labelSelector: "app=x",
    schema: JobSchema,
    onEvent: (type, job) => seen.push(`${type} ${job.metadata.name}`),
    signal: stop.signal,
    retryDelay: 10,
  });
  const wait = (n: number) => until(() => seen.length >= n);
  await wait(1);
  stub.put("jobs", { metadata: { name: "b", labels } });
  stub.put("jobs", { metadata: { name: "other", labels: { app: "y" } } });
  await wait(2);
  const watchesBefore = stub.requests.filter((r) => r.includes("watch=1")).length;
  stub.dropWatches("error");
  stub.put("jobs", { metadata: { name: "c", labels } });
  await wait(3);
  const resumed = stub.requests.filter((r) => r.includes("watch=1"));
  assert.ok(resumed.length > watchesBefore);
  // resumed from the version of "b", the last event seen: "c" once, nothing replayed
  assert.match(resumed.at(-1)!, /resourceVersion=10[2-4]/);
  // "d" arrives while the client is disconnected and the history up to it is compacted away
  const lists = () =>
    stub.requests.filter((r) => r.includes("/jobs?") && !r.includes("watch")).length;
  assert.equal(lists(), 1);
  stub.dropWatches();
  stub.put("jobs", { metadata: { name: "d", labels } });
  stub.compact();
  await until(() => seen.includes("ADDED d"));
  assert.equal(lists(), 2);
  stop.abort();
  await done;
  kube.close();
  assert.deepEqual(seen.slice(0, 3), ["ADDED a", "ADDED b", "ADDED c"]);
  // after 410 the collection is listed again: a, b, c come back as ADDED with d
  assert.ok(seen.includes("ADDED d"));
  assert.equal(seen.filter((s) => s === "ADDED c").length, 2);
  assert.ok(!seen.some((s) => s.includes("other")));
});

Deno.test("watch: a 401 is not retried forever and says what to check", async () => {
  await using stub = startStub({ token: "right" });
  const kube = client(stub, "wrong");
  await assert.rejects(
    watchResources({
      client: kube,
      path: "/apis/batch/v1/namespaces/builds/jobs",
      resource: "jobs.batch",
      labelSelector: "a=b",
      schema: JobSchema,
      onEvent: () => {},
      signal: new AbortController().signal,
    }),
    (e: unknown) => {
      assert.ok(e instanceof KanikoError);
      assert.match(e.message, /list jobs.batch in namespace builds: Unauthorized \(401\)$/);
      assert.match(e.hint ?? "", /the credentials were refused/);
      return true;
    },
  );
  kube.close();
});

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test("SIGINT and SIGTERM: the driver deletes its Jobs, then fails with 130 / 143", async () => {
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    await using stub = startStub();
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("./_interrupt_child.ts", import.meta.url).pathname, stub.url],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    await until(() => stub.created.length === 2, 20_000);
    child.kill(signal);
    const out = await child.output();
    const stdout = new TextDecoder().decode(out.stdout);
    assert.equal(stdout.trim(), `caught: interrupted by ${signal}`);
    assert.equal(out.code, code);
    assert.deepEqual(stub.deleted.sort(), [
      "kaniko-sig-linux-amd64?Background",
      "kaniko-sig-linux-arm64?Background",
    ]);
  }
});
