/**
 * The fake Kubernetes API server's API semantics: discovery, one global resourceVersion, Status
 * errors (404, 409, 400, 422), authentication (401), RBAC (403 with kube-apiserver's messages),
 * client certificates, and watches (events after a resourceVersion, resume, bookmarks, 410).
 */
import assert from "node:assert/strict";
import { driverRules, startFakeK8s } from "../_fake_k8s/mod.ts";
import { getJson, jobBody, postJob, readEvents, SCRIPT_EXECUTOR, waitFor } from "./_helpers.ts";

const NODES = [
  { name: "amd-1", platform: "linux/amd64" },
  { name: "arm-1", platform: "linux/arm64" },
  { name: "arm-2", platform: "linux/arm/v7", ready: false },
];
const SA = "system:serviceaccount:build:kaniko";

Deno.test("fake k8s: discovery, nodes with labels and Ready conditions", async () => {
  await using k8s = await startFakeK8s({ nodes: NODES, executor: SCRIPT_EXECUTOR });
  const version = await getJson(k8s, "/version", "");
  assert.equal(version.body.major, "1");
  assert.equal((await getJson(k8s, "/api")).body.versions[0], "v1");
  assert.equal((await getJson(k8s, "/apis")).body.groups[0].name, "batch");
  const nodes = await getJson(k8s, "/api/v1/nodes");
  assert.equal(nodes.body.kind, "NodeList");
  assert.match(nodes.body.metadata.resourceVersion, /^\d+$/);
  const byName = Object.fromEntries(
    nodes.body.items.map((n: { metadata: { name: string } }) => [n.metadata.name, n]),
  );
  assert.equal(byName["arm-1"].metadata.labels["kubernetes.io/arch"], "arm64");
  assert.equal(byName["arm-1"].metadata.labels["kubernetes.io/os"], "linux");
  assert.equal(byName["arm-2"].metadata.labels["kubernetes.io/arch"], "arm");
  assert.equal(byName["amd-1"].status.conditions[0].type, "Ready");
  assert.equal(byName["amd-1"].status.conditions[0].status, "True");
  assert.equal(byName["arm-2"].status.conditions[0].status, "False");
  const one = await getJson(k8s, "/api/v1/nodes/arm-1");
  assert.equal(one.body.kind, "Node");
  assert.ok(one.body.metadata.uid && one.body.metadata.creationTimestamp);
  const missing = await getJson(k8s, "/api/v1/nodes/nope");
  assert.equal(missing.status, 404);
  assert.deepEqual(
    [
      missing.body.kind,
      missing.body.status,
      missing.body.reason,
      missing.body.message,
      missing.body.code,
    ],
    ["Status", "Failure", "NotFound", 'nodes "nope" not found', 404],
  );
});

Deno.test("fake k8s: one global, monotonically increasing resourceVersion", async () => {
  await using k8s = await startFakeK8s({ nodes: NODES, executor: SCRIPT_EXECUTOR, tls: false });
  const rvs: number[] = [];
  for (const n of ["a", "b", "c"]) {
    const s = k8s.createSecret("ns1", n, { k: "v" });
    rvs.push(Number(s.metadata.resourceVersion));
  }
  const r = await postJob(k8s, "ns1", jobBody("j1"));
  assert.equal(r.status, 201);
  const job = await r.json();
  rvs.push(Number(job.metadata.resourceVersion));
  for (let i = 1; i < rvs.length; i++) assert.ok(rvs[i] > rvs[i - 1], `${rvs}`);
  const list = await getJson(k8s, "/api/v1/namespaces/ns1/secrets");
  assert.ok(Number(list.body.metadata.resourceVersion) >= rvs[2]);
  assert.equal(list.body.items.length, 3);
  assert.equal(list.body.items[0].kind, undefined, "list items carry no kind");
  const dup = await postJob(k8s, "ns1", jobBody("j1"));
  assert.equal(dup.status, 409);
  const dupBody = await dup.json();
  assert.equal(dupBody.reason, "AlreadyExists");
  assert.equal(dupBody.message, 'jobs.batch "j1" already exists');
});

Deno.test("fake k8s: invalid Jobs are refused with 422 Invalid and field causes, bad JSON types with 400", async () => {
  await using k8s = await startFakeK8s({ nodes: NODES, executor: SCRIPT_EXECUTOR, tls: false });
  const bad = jobBody("Bad_Name");
  bad.spec.template.spec.restartPolicy = "Always";
  bad.spec.template.spec.containers[0].image = "";
  bad.spec.template.spec.containers[0].volumeMounts = [{
    name: "docker-config",
    mountPath: "/kaniko/.docker",
  }];
  const r = await postJob(k8s, "ns1", bad);
  assert.equal(r.status, 422);
  const st = await r.json();
  assert.equal(st.reason, "Invalid");
  assert.match(st.message, /^Job\.batch "Bad_Name" is invalid: \[/);
  const fields = st.details.causes.map((c: { field: string }) => c.field).sort();
  assert.deepEqual(fields, [
    "metadata.name",
    "spec.template.spec.containers[0].image",
    "spec.template.spec.containers[0].volumeMounts[0].name",
    "spec.template.spec.restartPolicy",
  ]);
  const noContainers = jobBody("ok");
  noContainers.spec.template.spec.containers = [];
  const r2 = await (await postJob(k8s, "ns1", noContainers)).json();
  assert.equal(
    r2.message,
    'Job.batch "ok" is invalid: spec.template.spec.containers: Required value',
  );
  const typeErr = jobBody("ok");
  typeErr.spec.backoffLimit = "zero";
  const r3 = await postJob(k8s, "ns1", typeErr);
  assert.equal(r3.status, 400);
  assert.equal((await r3.json()).reason, "BadRequest");
  assert.equal(k8s.cluster.createdJobs.length, 0);
});

Deno.test("fake k8s: unknown tokens get 401, RBAC denials 403 with the real message", async () => {
  await using k8s = await startFakeK8s({
    nodes: NODES,
    executor: SCRIPT_EXECUTOR,
    auth: { tokens: { "sa-token": SA }, users: { [SA]: { rules: driverRules("build", false) } } },
  });
  const unknown = await getJson(k8s, "/api/v1/nodes", "wrong");
  assert.equal(unknown.status, 401);
  assert.deepEqual([unknown.body.reason, unknown.body.message], ["Unauthorized", "Unauthorized"]);
  assert.equal(
    (await getJson(k8s, "/api/v1/namespaces/build/pods", null as unknown as string)).status,
    401,
  );
  const denied = await postJob(k8s, "other", jobBody("j"), "sa-token");
  assert.equal(denied.status, 403);
  const st = await denied.json();
  assert.equal(st.reason, "Forbidden");
  assert.equal(
    st.message,
    `jobs.batch is forbidden: User "${SA}" cannot create resource "jobs" in API group "batch" in the namespace "other"`,
  );
  const nodes = await getJson(k8s, "/api/v1/nodes", "sa-token");
  assert.equal(nodes.status, 403);
  assert.equal(
    nodes.body.message,
    `nodes is forbidden: User "${SA}" cannot list resource "nodes" in API group "" at the cluster scope`,
  );
  const secret = await getJson(k8s, "/api/v1/namespaces/build/secrets/regcred", "sa-token");
  assert.equal(
    secret.body.message,
    `secrets "regcred" is forbidden: User "${SA}" cannot get resource "secrets" in API group "" in the namespace "build"`,
  );
  const ok = await postJob(k8s, "build", jobBody("j"), "sa-token");
  assert.equal(ok.status, 201);
  await waitFor(
    "pod list allowed",
    async () => (await getJson(k8s, "/api/v1/namespaces/build/pods", "sa-token")).status === 200,
  );
});

Deno.test("fake k8s: client certificates authenticate as CN with groups O", async () => {
  await using k8s = await startFakeK8s({
    nodes: NODES,
    executor: SCRIPT_EXECUTOR,
    auth: { users: { "builder": { rules: driverRules("build") } } },
  });
  const call = async (user: string, groups: string[], path: string) => {
    const { cert, key } = await k8s.clientCertificate(user, groups);
    using client = Deno.createHttpClient({
      caCerts: [k8s.caPem!],
      cert: await Deno.readTextFile(cert),
      key: await Deno.readTextFile(key),
    });
    const r = await fetch(`${k8s.url}${path}`, { client });
    return { status: r.status, body: await r.json() };
  };
  assert.equal((await call("builder", [], "/api/v1/nodes")).status, 200);
  const denied = await call("nobody", [], "/api/v1/nodes");
  assert.equal(denied.status, 403);
  assert.match(denied.body.message, /^nodes is forbidden: User "nobody" cannot list/);
  assert.equal(
    (await call("root", ["system:masters"], "/api/v1/namespaces/x/secrets")).status,
    200,
  );
});

Deno.test("fake k8s: watch from a resourceVersion, resume after a cut, bookmarks, 410 when too old", async () => {
  await using k8s = await startFakeK8s({
    nodes: NODES,
    executor: SCRIPT_EXECUTOR,
    bookmarkMs: 100,
  });
  const list = await getJson(k8s, "/apis/batch/v1/namespaces/w/jobs");
  const rv0 = list.body.metadata.resourceVersion;
  assert.equal((await postJob(k8s, "w", jobBody("j1"))).status, 201);
  const w1 = await k8s.fetch(
    `/apis/batch/v1/namespaces/w/jobs?watch=1&resourceVersion=${rv0}&allowWatchBookmarks=true`,
  );
  assert.equal(w1.status, 200);
  const done = (evs: { object: { status?: { conditions?: { type: string }[] } } }[]) =>
    evs.some((e) => e.object.status?.conditions?.some((c) => c.type === "Complete"));
  const first = await readEvents(w1, done);
  assert.equal(first.events[0].type, "ADDED");
  assert.equal(first.events[0].object.metadata.name, "j1");
  assert.equal(first.events[0].object.kind, "Job");
  const rvs = first.events.filter((e) => e.type !== "BOOKMARK").map((e) =>
    Number(e.object.metadata.resourceVersion)
  );
  assert.deepEqual(rvs, [...rvs].sort((a, b) => a - b));
  const last = String(rvs.at(-1));
  // a watch that is cut mid-stream ends with an error; resuming from the last seen RV misses nothing
  const w2 = await k8s.fetch(
    `/apis/batch/v1/namespaces/w/jobs?watch=1&resourceVersion=${last}&allowWatchBookmarks=true`,
  );
  const reading = readEvents(w2);
  await waitFor("watch open", () => k8s.hub.open === 1);
  k8s.cutWatches("error");
  assert.equal((await reading).ended, "error");
  assert.equal((await postJob(k8s, "w", jobBody("j2"))).status, 201);
  const w3 = await k8s.fetch(
    `/apis/batch/v1/namespaces/w/jobs?watch=1&resourceVersion=${last}&allowWatchBookmarks=true`,
  );
  const resumed = await readEvents(
    w3,
    (evs) => evs.some((e) => e.type === "BOOKMARK") && done(evs),
  );
  const real = resumed.events.filter((e) => e.type !== "BOOKMARK");
  assert.equal(real[0].type, "ADDED");
  assert.equal(real[0].object.metadata.name, "j2");
  assert.ok(
    real.every((e) => e.object.metadata.name === "j2"),
    "nothing from before the resourceVersion",
  );
  const bookmark = resumed.events.find((e) => e.type === "BOOKMARK");
  assert.deepEqual(Object.keys(bookmark.object.metadata), ["resourceVersion"]);
  await waitFor("the watch to close after the client left", () => k8s.hub.open === 0);
  // a clean end of stream (server-side timeout)
  const w4 = await k8s.fetch(
    `/apis/batch/v1/namespaces/w/jobs?watch=1&resourceVersion=${last}&timeoutSeconds=1`,
  );
  assert.equal((await readEvents(w4)).ended, "eof");
  // too old: ERROR event with a 410 Status
  k8s.compact();
  const w5 = await k8s.fetch(`/apis/batch/v1/namespaces/w/jobs?watch=1&resourceVersion=${rv0}`);
  assert.equal(w5.status, 200);
  const gone = await readEvents(w5);
  assert.equal(gone.ended, "eof");
  assert.equal(gone.events.length, 1);
  assert.equal(gone.events[0].type, "ERROR");
  assert.equal(gone.events[0].object.kind, "Status");
  assert.equal(gone.events[0].object.code, 410);
  assert.equal(gone.events[0].object.reason, "Expired");
  assert.match(gone.events[0].object.message, /^too old resource version: \d+ \(\d+\)$/);
});

Deno.test("fake k8s: watch without resourceVersion starts with the current objects; selectors filter", async () => {
  await using k8s = await startFakeK8s({ nodes: NODES, executor: SCRIPT_EXECUTOR, tls: false });
  await postJob(k8s, "s", jobBody("a"));
  await postJob(k8s, "s", jobBody("b"));
  const w = await k8s.fetch(`/api/v1/namespaces/s/pods?watch=true&labelSelector=job-name%3Db`);
  const r = await readEvents(w, (evs) => evs.some((e) => e.object.status?.phase === "Succeeded"));
  assert.equal(r.events[0].type, "ADDED");
  assert.ok(r.events.every((e) => e.object.metadata.labels["job-name"] === "b"));
  await waitFor("the watch to close after the client left", () => k8s.hub.open === 0);
  const sel = await getJson(
    k8s,
    "/api/v1/namespaces/s/pods?labelSelector=batch.kubernetes.io%2Fjob-name%20in%20(a)",
  );
  assert.equal(sel.body.items.length, 1);
  assert.match(sel.body.items[0].metadata.name, /^a-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
  const byName = await getJson(
    k8s,
    `/api/v1/namespaces/s/pods?fieldSelector=metadata.name%3D${sel.body.items[0].metadata.name}`,
  );
  assert.equal(byName.body.items.length, 1);
});

Deno.test("fake k8s: cutting watches breaks (or cleanly ends) the stream over plain HTTP too", async () => {
  await using k8s = await startFakeK8s({ nodes: NODES, executor: SCRIPT_EXECUTOR, tls: false });
  for (const [mode, ended] of [["error", "error"], ["close", "eof"]] as const) {
    const w = await k8s.fetch("/api/v1/nodes?watch=1&allowWatchBookmarks=true");
    const reading = readEvents(w);
    await waitFor("watch open", () => k8s.hub.open === 1);
    k8s.cutWatches(mode);
    const r = await reading;
    assert.equal(r.ended, ended, mode);
    assert.equal(r.events.length, 3, "ADDED for each node first");
    await waitFor("watch closed", () => k8s.hub.open === 0);
  }
});
