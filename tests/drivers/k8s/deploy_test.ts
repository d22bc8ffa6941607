/**
 * deploy/: the RBAC grants every request the driver makes (observed on the stub API server, not
 * listed by hand) and nothing it does not need; the example coordinator Job's args are a valid
 * k8s build for our CLI.
 */
import assert from "node:assert/strict";
import YAML from "yaml";
import { KubeClient } from "../../../drivers/k8s/client.ts";
import { buildSelector, jobManifest } from "../../../drivers/k8s/jobs.ts";
import { listNodes } from "../../../drivers/k8s/nodes.ts";
import { runJobs } from "../../../drivers/k8s/run.ts";
import { parseInvocation } from "../../../lib/cli/invocation.ts";
import type { BuildOptions } from "../../../lib/cli/options.ts";
import { finishedJob, startStub, terminatedPod } from "./_stub.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;

type Rule = { apiGroups: string[]; resources: string[]; verbs: string[] };
type Doc = { kind: string; metadata: { name: string }; rules?: Rule[]; [k: string]: any };

function docs(file: string): Doc[] {
  return YAML.parseAllDocuments(Deno.readTextFileSync(ROOT + file)).map((d) => d.toJS() as Doc);
}

/** `verb group/resource` of a stub request line. */
function permission(line: string): string {
  const [method, target] = line.split(" ");
  const url = new URL(target, "http://x");
  const p = url.pathname;
  const resource = p.endsWith("/log")
    ? "/pods/log"
    : p.includes("/jobs")
    ? "batch/jobs"
    : p.includes("/pods")
    ? "/pods"
    : "/nodes";
  const collection = /\/(jobs|pods|nodes)$/.test(p);
  const verb = method === "POST"
    ? "create"
    : method === "DELETE"
    ? "delete"
    : url.searchParams.get("watch")
    ? "watch"
    : collection
    ? "list"
    : "get";
  return `${verb} ${resource}`;
}

function granted(rules: Rule[]): Set<string> {
  const out = new Set<string>();
  for (const r of rules) {
    for (const g of r.apiGroups) {
      for (const res of r.resources) for (const v of r.verbs) out.add(`${v} ${g}/${res}`);
    }
  }
  return out;
}

Deno.test("deploy/rbac.yaml grants exactly what the driver uses", async () => {
  const all = docs("deploy/rbac.yaml");
  assert.deepEqual(all.map((d) => d.kind), [
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "ClusterRoleBinding",
  ]);
  const role = granted(all.find((d) => d.kind === "Role")!.rules!);
  const cluster = granted(all.find((d) => d.kind === "ClusterRole")!.rules!);
  await using stub = startStub({
    nodes: [],
    onJobCreated(job, s) {
      const ok = job.metadata.name.endsWith("amd64");
      const pod = terminatedPod(job, ok ? 0 : 1, ok ? `sha256:${"e".repeat(64)}` : "boom");
      s.logs.set(pod.metadata.name, "boom\n");
      s.put("pods", pod);
      s.put("jobs", finishedJob(job, ok ? "Complete" : "Failed"));
    },
  });
  const client = new KubeClient({
    server: stub.url,
    source: "t",
    namespace: "builds",
    tls: { insecure: false },
    auth: { kind: "none" },
  });
  await listNodes(client);
  for (const arch of ["amd64", "arm64"]) {
    const platform = `linux/${arch}`;
    const slug = `linux-${arch}`;
    const run = {
      platform,
      slug,
      manifest: jobManifest({
        buildId: arch,
        namespace: "builds",
        target: { platform, slug, parsed: { os: "linux", architecture: arch } },
        image: "i",
        args: [],
        deadlineSeconds: 9,
      }),
    };
    await runJobs([run], {
      client,
      buildId: arch,
      selector: buildSelector(arch),
      timeout: 5000,
      signal: new AbortController().signal,
    }).catch(() => {});
  }
  client.close();
  const used = new Set(stub.requests.map(permission));
  assert.deepEqual([...used].sort(), [
    "create batch/jobs",
    "delete batch/jobs",
    "get /pods/log",
    "list /nodes",
    "list /pods",
    "list batch/jobs",
    "watch /pods",
    "watch batch/jobs",
  ]);
  for (const p of used) {
    assert.ok(p === "list /nodes" ? cluster.has(p) : role.has(p), `${p} is not granted`);
  }
  // nothing beyond that: no secrets, no exec, nodes only in the ClusterRole
  assert.ok(![...role].some((p) => /secrets|exec|nodes/.test(p)), [...role].join(", "));
  assert.deepEqual([...cluster].sort(), ["get /nodes", "list /nodes"]);
});

Deno.test("deploy/coordinator-job.yaml runs a k8s multi-platform build our CLI accepts", () => {
  const [job] = docs("deploy/coordinator-job.yaml");
  assert.equal(job.kind, "Job");
  const pod = job.spec.template.spec;
  assert.equal(pod.serviceAccountName, "kaniko-deno");
  const inv = parseInvocation(pod.containers[0].args, { env: () => undefined });
  assert.equal(inv.command, "build");
  const opts = (inv as { options: BuildOptions }).options;
  assert.equal(opts.driver, "k8s");
  assert.deepEqual(opts.multiPlatform, ["linux/amd64", "linux/arm64"]);
  assert.ok(opts.publishIndex);
  assert.equal(opts.k8s?.registrySecret, "regcred");
  const secretVolume = pod.volumes.find((v: { secret?: unknown }) => v.secret);
  assert.equal(secretVolume.secret.secretName, opts.k8s?.registrySecret);
});
