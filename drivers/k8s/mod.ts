/**
 * The `k8s` driver: one `batch/v1` Job per platform, in parallel, each pinned to a node of its
 * platform (`nodeSelector` `kubernetes.io/os` and `kubernetes.io/arch`), running the executor
 * image with the build's own flags for that one platform. The executor pushes by digest and
 * reports the digest as its container's termination message; the driver reads it from the pod's
 * status (never by exec), checks the manifest in the registry and hands the coordinator one
 * remote child per platform. Every Job created is deleted at the end, on failure, on timeout and
 * on SIGINT/SIGTERM.
 *
 * Kubernetes access: `--kubeconfig`/`$KUBECONFIG`/`~/.kube/config` (token, client certificate,
 * exec credential plugins) or the in-cluster ServiceAccount; RBAC in `deploy/rbac.yaml`.
 * @module
 */
import { claimInterrupts } from "../../lib/interrupts.ts";
import { DEFAULT_EXECUTOR_IMAGE } from "../../lib/cli/build_flags.ts";
import type { BuildOptions, K8sOptions } from "../../lib/cli/options.ts";
import { KanikoError } from "../../lib/errors.ts";
import { log, logConfig } from "../../lib/log.ts";
import { parseReference } from "../../lib/registry/reference.ts";
import type { RegistrySession } from "../../lib/registry/session.ts";
import type { ChildImage, Driver, MultiPlatformBuild, PlatformTarget } from "../types.ts";
import { KubeClient } from "./client.ts";
import { loadKubeConfig } from "./config.ts";
import { jobSource } from "./context.ts";
import { buildSelector, executorArgs, jobManifest, platformDestination } from "./jobs.ts";
import { listNodes, requireNodes } from "./nodes.ts";
import { type JobRun, runJobs } from "./run.ts";

export { KubeClient } from "./client.ts";
export { loadKubeConfig } from "./config.ts";
export { executorArgs, jobManifest } from "./jobs.ts";

/** The k8s settings of a build (defaults when the options were made without `--driver=k8s`). */
export function k8sSettings(opts: BuildOptions): K8sOptions {
  return opts.k8s ?? { executorImage: DEFAULT_EXECUTOR_IMAGE, timeout: 30 * 60_000 };
}

/** Connects to the cluster the flags name. */
export async function connect(settings: K8sOptions): Promise<KubeClient> {
  const config = await loadKubeConfig({
    kubeconfig: settings.kubeconfig,
    context: settings.context,
    namespace: settings.namespace,
  });
  log.debug("Kubernetes API", {
    server: config.server,
    source: config.source,
    ns: config.namespace,
  });
  return new KubeClient(config);
}

/** The coordinator's log level and format, for the executors in the Jobs. */
function logArgs(): string[] {
  const { level, format } = logConfig();
  const args = level === "info" ? [] : [`--verbosity=${level}`];
  // Pod logs are files: colour codes would only clutter them.
  return [...args, `--log-format=${format === "json" ? "json" : "text"}`];
}

/** Refuses what cannot work with Jobs, before anything is created. */
function checkOptions(opts: BuildOptions): void {
  if (opts.noPush || opts.destinations.length === 0) {
    throw new KanikoError("--driver=k8s pushes each platform's image: it needs --destination", {
      hint: "give --destination (and drop --no-push)",
      exitCode: 2,
    });
  }
  if (opts.secrets.length > 0) {
    throw new KanikoError("--secret cannot reach the Jobs of --driver=k8s", {
      hint: "mount secrets into the executor image or build with --driver=local",
      exitCode: 2,
    });
  }
  const certs = Object.keys(opts.registry.registryCertificates).length +
    Object.keys(opts.registry.registryClientCerts).length;
  if (certs > 0) {
    log.warn(
      "--registry-certificate and --registry-client-cert name local files: the Jobs do not get " +
        "them (use an executor image that trusts the CA)",
    );
  }
}

/** Runs `fn` with SIGINT/SIGTERM turned into an abort of its signal; listeners removed after. */
export async function withInterrupts<T>(
  outer: AbortSignal,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const interrupt = new AbortController();
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? [] : ["SIGINT", "SIGTERM"];
  const handlers = signals.map((sig) => {
    const handler = () => {
      log.warn(`${sig}: deleting the build's Jobs`);
      interrupt.abort(
        new KanikoError(`interrupted by ${sig}`, { exitCode: sig === "SIGINT" ? 130 : 143 }),
      );
    };
    Deno.addSignalListener(sig, handler);
    return [sig, handler] as const;
  });
  const release = claimInterrupts(); // the CLI lets the first signal through to us
  try {
    return await fn(AbortSignal.any([outer, interrupt.signal]));
  } finally {
    release();
    for (const [sig, handler] of handlers) Deno.removeSignalListener(sig, handler);
  }
}

async function childOf(
  target: PlatformTarget,
  digest: string,
  opts: BuildOptions,
  session: RegistrySession,
): Promise<ChildImage> {
  const ref = parseReference(platformDestination(opts.destinations[0], target.slug));
  const client = session.client(ref.registry, "pull");
  let desc = await client.headManifest(ref.repository, digest);
  if (!desc) {
    throw new KanikoError(
      `${target.platform}: the Job reported ${digest}, but ${ref.name} does not have it`,
      { hint: "check that the Jobs push to the same registry this process reads" },
    );
  }
  if (!desc.mediaType || !desc.size) {
    const m = await client.getManifest(ref.repository, digest);
    desc = { mediaType: m.mediaType, digest, size: m.bytes.byteLength };
  }
  return {
    kind: "remote",
    target,
    repository: ref.name,
    digest,
    mediaType: desc.mediaType,
    size: desc.size,
  };
}

/** The `k8s` driver. */
export const k8sDriver: Driver = {
  name: "k8s",

  async preflight(build: MultiPlatformBuild): Promise<void> {
    checkOptions(build.opts);
    const client = await connect(k8sSettings(build.opts));
    try {
      if (!build.opts.requireNativeNodes) return;
      requireNodes(await listNodes(client), build.targets);
    } finally {
      client.close();
    }
  },

  describe(build: MultiPlatformBuild): string[] {
    const image = k8sSettings(build.opts).executorImage;
    return build.targets.map((t) =>
      `${t.platform}: k8s Job on a ${t.parsed.os}/${t.parsed.architecture} node (image ${image})`
    );
  },

  async build(build: MultiPlatformBuild, ctx): Promise<ChildImage[]> {
    const { opts } = build;
    checkOptions(opts);
    const settings = k8sSettings(opts);
    const client = await connect(settings);
    try {
      return await withInterrupts(ctx.signal, async (signal) => {
        const source = await jobSource(opts, build.context, ctx.session, signal);
        const buildId = crypto.randomUUID().replaceAll("-", "").slice(0, 10);
        const runs: JobRun[] = build.targets.map((target) => ({
          platform: target.platform,
          slug: target.slug,
          manifest: jobManifest({
            buildId,
            namespace: client.namespace,
            target,
            image: settings.executorImage,
            args: [...executorArgs(opts, target, source, build.format), ...logArgs()],
            serviceAccount: settings.serviceAccount,
            registrySecret: settings.registrySecret,
            deadlineSeconds: settings.timeout / 1000,
          }),
        }));
        const results = await runJobs(runs, {
          client,
          buildId,
          selector: buildSelector(buildId),
          timeout: settings.timeout,
          signal,
        });
        return await Promise.all(
          build.targets.map((t, i) => childOf(t, results[i].digest, opts, ctx.session)),
        );
      });
    } finally {
      client.close();
    }
  },
};
