import assert from "node:assert/strict";
import { apiError } from "../../../drivers/k8s/errors.ts";
import {
  buildSelector,
  executorArgs,
  jobManifest,
  jobName,
  platformCacheRepo,
  platformDestination,
} from "../../../drivers/k8s/jobs.ts";
import { k8sDriver } from "../../../drivers/k8s/mod.ts";
import { requireNodes } from "../../../drivers/k8s/nodes.ts";
import type { MultiPlatformBuild } from "../../../drivers/types.ts";
import { parseInvocation } from "../../../lib/cli/invocation.ts";
import type { BuildOptions } from "../../../lib/cli/options.ts";
import { describeError, KanikoError } from "../../../lib/errors.ts";
import { target } from "./_stub.ts";

function options(argv: string[]): BuildOptions {
  const inv = parseInvocation(argv, { env: () => undefined });
  assert.equal(inv.command, "build");
  return (inv as { options: BuildOptions }).options;
}

const ARM7 = target("linux/arm/v7");
const SOURCE = {
  context: "oci://reg.example/app@sha256:" + "c".repeat(64),
  dockerfile: "Dockerfile",
};

Deno.test("k8s flags map to BuildOptions.k8s only with --driver=k8s", () => {
  const o = options([
    "-d=reg.example/app:1",
    "--driver=k8s",
    "--kubeconfig=/kc",
    "--kube-context=ctx",
    "--namespace=builds",
    "--executor-image=my/executor:2",
    "--k8s-registry-secret=regcred",
    "--k8s-service-account=builder",
    "--k8s-timeout=1h30m",
  ]);
  assert.deepEqual(o.k8s, {
    kubeconfig: "/kc",
    context: "ctx",
    namespace: "builds",
    executorImage: "my/executor:2",
    registrySecret: "regcred",
    serviceAccount: "builder",
    timeout: 90 * 60_000,
  });
  const d = options(["-d=reg.example/app:1", "--driver=k8s"]);
  assert.equal(d.k8s?.executorImage, "ghcr.io/kaniko-deno/executor:0.1.0");
  assert.equal(d.k8s?.timeout, 30 * 60_000);
  const inv = parseInvocation(["-d=r/a:1", "--namespace=x"], { env: () => undefined });
  const { options: plain, warnings } = inv as { options: BuildOptions; warnings: string[] };
  assert.equal(plain.k8s, undefined);
  assert.match(warnings.join("\n"), /ignoring --namespace: they apply to --driver=k8s only/);
});

Deno.test("executorArgs: the build's flags for one platform, per-platform tags, digest file", () => {
  const o = options([
    "--context=.",
    "-d=reg.example/team/app:1.0",
    "-d=mirror.example/app",
    "--build-arg=A=1",
    "--build-arg=B=x y",
    "--target=final",
    "--label=org.x=y",
    "--reproducible",
    "--compression=zstd",
    "--compression-level=9",
    "--cache=true",
    "--arch-cache-repo-suffix=-${ARCH}-cache",
    "--insecure-registry=reg.example",
    "--registry-mirror=mirror.gcr.io",
    "--push-retry=2",
    "--skip-unused-stages",
    "--ignore-var-run=false",
  ]);
  const args = executorArgs(o, ARM7, SOURCE, "oci");
  assert.deepEqual(args, [
    `--context=${SOURCE.context}`,
    "--dockerfile=Dockerfile",
    "--build-arg=A=1",
    "--build-arg=B=x y",
    "--target=final",
    "--skip-unused-stages",
    "--label=org.x=y",
    "--custom-platform=linux/arm/v7",
    "--destination=reg.example/team/app:1.0-linux-arm-v7",
    "--destination=mirror.example/app:latest-linux-arm-v7",
    "--digest-file=/dev/termination-log",
    "--oci-mode=oci",
    "--compression=zstd",
    "--compression-level=9",
    "--reproducible",
    "--ignore-var-run=false",
    "--cache=true",
    "--cache-repo=reg.example/team/app/cache-arm-v7-cache",
    "--cache-ttl=1209600s",
    "--insecure-registry=reg.example",
    "--registry-mirror=mirror.gcr.io",
    "--push-retry=2",
    "--push-retry-initial-delay=1000",
    "--push-retry-max-delay=30000",
  ]);
  // every argument parses back into a single-platform build with the same meaning
  const back = options(args);
  assert.equal(back.customPlatform, "linux/arm/v7");
  assert.deepEqual(back.buildArgs, ["A=1", "B=x y"]);
  assert.equal(back.digestFile, "/dev/termination-log");
  assert.equal(back.cacheRepo, "reg.example/team/app/cache-arm-v7-cache");
  assert.deepEqual(back.registry.insecureRegistries, ["reg.example"]);
});

Deno.test("executorArgs: git contexts pass through with --git and the sub-path; docker form", () => {
  const o = options([
    "--context=git://github.com/org/repo.git#main",
    "--context-sub-path=app",
    "--git=branch=main,single-branch=true",
    "-d=reg.example/app:1",
  ]);
  const args = executorArgs(o, target("linux/amd64"), {
    context: o.context,
    contextSubPath: o.contextSubPath,
    dockerfile: "app/Dockerfile",
  }, "docker");
  assert.deepEqual(args.slice(0, 4), [
    "--context=git://github.com/org/repo.git#main",
    "--dockerfile=app/Dockerfile",
    "--context-sub-path=app",
    "--git=branch=main,single-branch=true",
  ]);
  assert.ok(args.includes("--oci-mode=docker"));
  assert.ok(!args.some((a) => a.startsWith("--cache")));
});

Deno.test("jobManifest: nodeSelector, labels, termination message, secret mount", () => {
  const job = jobManifest({
    buildId: "abc123",
    namespace: "builds",
    target: ARM7,
    image: "ghcr.io/kaniko-deno/executor:0.1.0",
    args: ["--x"],
    serviceAccount: "kaniko-deno",
    registrySecret: "regcred",
    deadlineSeconds: 1800,
  });
  const labels = {
    "app.kubernetes.io/name": "kaniko-deno",
    "app.kubernetes.io/managed-by": "kaniko-deno",
    "kaniko-deno.dev/build-id": "abc123",
    "kaniko-deno.dev/platform": "linux-arm-v7",
  };
  const annotations = { "kaniko-deno.dev/platform": "linux/arm/v7" };
  assert.deepEqual(job, {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name: "kaniko-abc123-linux-arm-v7", namespace: "builds", labels, annotations },
    spec: {
      backoffLimit: 0,
      ttlSecondsAfterFinished: 3600,
      activeDeadlineSeconds: 1800,
      template: {
        metadata: { labels, annotations },
        spec: {
          restartPolicy: "Never",
          nodeSelector: { "kubernetes.io/os": "linux", "kubernetes.io/arch": "arm" },
          serviceAccountName: "kaniko-deno",
          containers: [{
            name: "executor",
            image: "ghcr.io/kaniko-deno/executor:0.1.0",
            args: ["--x"],
            terminationMessagePath: "/dev/termination-log",
            terminationMessagePolicy: "FallbackToLogsOnError",
            env: [{ name: "DOCKER_CONFIG", value: "/kaniko/.docker" }],
            volumeMounts: [{ name: "docker-config", mountPath: "/kaniko/.docker", readOnly: true }],
          }],
          volumes: [{
            name: "docker-config",
            secret: {
              secretName: "regcred",
              items: [{ key: ".dockerconfigjson", path: "config.json" }],
            },
          }],
        },
      },
    },
  });
  const plain = jobManifest({
    buildId: "x",
    namespace: "ns",
    target: target("linux/amd64"),
    image: "i",
    args: [],
    deadlineSeconds: 0.2,
  }) as { spec: { activeDeadlineSeconds: number; template: { spec: Record<string, unknown> } } };
  assert.equal(plain.spec.activeDeadlineSeconds, 1);
  assert.deepEqual(Object.keys(plain.spec.template.spec), [
    "restartPolicy",
    "nodeSelector",
    "containers",
  ]);
  assert.equal(
    buildSelector("x"),
    "app.kubernetes.io/managed-by=kaniko-deno,kaniko-deno.dev/build-id=x",
  );
});

Deno.test("names and per-platform references stay valid", () => {
  const long = jobName("0123456789", "linux-" + "a".repeat(80));
  assert.ok(long.length <= 63 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(long), long);
  assert.equal(
    platformDestination("busybox", "linux-amd64"),
    "docker.io/library/busybox:latest-linux-amd64",
  );
  assert.equal(
    platformDestination("127.0.0.1:5000/a/b:v1@sha256:" + "d".repeat(64), "linux-s390x"),
    "127.0.0.1:5000/a/b:v1-linux-s390x",
  );
  const o = options(["-d=reg.example/app:1", "--cache", "--cache-repo=oci:/cache"]);
  assert.equal(platformCacheRepo(o, ARM7), "oci:/cache");
});

Deno.test("API errors: one line naming verb, resource, namespace and the fix", () => {
  const forbidden = JSON.stringify({
    kind: "Status",
    status: "Failure",
    reason: "Forbidden",
    code: 403,
    message:
      'jobs.batch is forbidden: User "system:serviceaccount:b:default" cannot create resource "jobs"',
  });
  const e = apiError(
    403,
    forbidden,
    { verb: "create", resource: "jobs.batch", namespace: "b" },
    "https://k",
  );
  const line = describeError(e);
  assert.match(
    line,
    /^Kubernetes API https:\/\/k: create jobs.batch in namespace b: jobs.batch is forbidden: .* \(403\); /,
  );
  assert.match(
    line,
    /apply deploy\/rbac.yaml \(Role kaniko-deno-driver and its RoleBinding\) in namespace b/,
  );
  assert.equal(e.status, 403);
  assert.equal(e.code, "Forbidden");
  const nodes = describeError(apiError(403, forbidden, { verb: "list", resource: "nodes" }, "s"));
  assert.match(nodes, /ClusterRole kaniko-deno-nodes .* or pass --require-native-nodes=false/);
  const gone = apiError(
    404,
    "{}",
    { verb: "get", resource: "pods", namespace: "b", name: "p" },
    "s",
  );
  assert.match(describeError(gone), /get pods "p" in namespace b: \{\} \(404\); it is gone/);
  const ns = apiError(404, "", { verb: "create", resource: "jobs.batch", namespace: "zz" }, "s");
  assert.match(
    describeError(ns),
    /HTTP 404 \(404\); check that namespace zz exists \(--namespace\)/,
  );
  const conflict = apiError(
    409,
    "",
    { verb: "create", resource: "jobs.batch", namespace: "b" },
    "s",
  );
  assert.match(describeError(conflict), /exists already; run the build again/);
  const invalid = JSON.stringify({
    kind: "Status",
    code: 422,
    reason: "Invalid",
    message: 'Job.batch "x" is invalid: spec.template.spec.containers[0].image: Required value',
  });
  const inv = describeError(
    apiError(422, invalid, { verb: "create", resource: "jobs.batch" }, "s"),
  );
  assert.match(inv, /is invalid: .*Required value \(422\); the API server refused the object/);
  assert.ok(!inv.includes("\n"));
});

Deno.test("requireNodes: Ready, schedulable nodes of each platform; variants leniently", () => {
  const node = (name: string, arch: string, extra: Record<string, unknown> = {}) => ({
    metadata: { name, labels: { "kubernetes.io/os": "linux", "kubernetes.io/arch": arch } },
    status: { conditions: [{ type: "Ready", status: "True" }] },
    ...extra,
  });
  const nodes = [
    node("a", "amd64"),
    node("b", "arm64", { status: { conditions: [{ type: "Ready", status: "False" }] } }),
    node("c", "s390x", { spec: { unschedulable: true } }),
    node("d", "arm"),
    {
      metadata: {
        name: "e",
        labels: {
          "kubernetes.io/os": "linux",
          "kubernetes.io/arch": "ppc64le",
          "kaniko-deno.dev/arch-variant": "v9",
        },
      },
      status: { conditions: [{ type: "Ready", status: "True" }] },
    },
  ];
  requireNodes(nodes, [target("linux/amd64"), ARM7]);
  assert.throws(
    () =>
      requireNodes(nodes, [
        target("linux/amd64"),
        target("linux/arm64"),
        target("linux/s390x"),
        target("linux/ppc64le/v8"),
      ]),
    (e: unknown) => {
      assert.ok(e instanceof KanikoError);
      assert.equal(
        e.message,
        "no Ready Kubernetes node for linux/arm64, linux/s390x, linux/ppc64le/v8 " +
          "(Ready nodes: 1 × linux/amd64, 1 × linux/arm, 1 × linux/ppc64le/v9)",
      );
      assert.match(e.hint ?? "", /--require-native-nodes=false/);
      return true;
    },
  );
});

Deno.test("describe: one line per platform", () => {
  const o = options(["-d=reg.example/app:1", "--driver=k8s", "--executor-image=ex:1"]);
  const build = { opts: o, targets: [target("linux/arm64"), ARM7] } as MultiPlatformBuild;
  assert.deepEqual(k8sDriver.describe(build), [
    "linux/arm64: k8s Job on a linux/arm64 node (image ex:1)",
    "linux/arm/v7: k8s Job on a linux/arm node (image ex:1)",
  ]);
});
