/**
 * Running one build's Jobs: create them in parallel, follow Jobs and their Pods with resumable
 * watches, read each digest from the executor's termination message, report a failed Job's
 * reason and the tail of its pod's log, enforce the time limit, and delete every Job created —
 * after success, on failure, on timeout and on Ctrl-C.
 * @module
 */
import { KanikoError } from "../../lib/errors.ts";
import { log } from "../../lib/log.ts";
import type { KubeClient } from "./client.ts";
import { CONTAINER, LABELS } from "./jobs.ts";
import { hasCondition, type Job, JobSchema, listSchema, type Pod, PodSchema } from "./resources.ts";
import { watchResources } from "./watch.ts";

/** One Job to run. */
export interface JobRun {
  platform: string;
  slug: string;
  manifest: Record<string, unknown>;
}

/** What a successful Job gave back. */
export interface JobResult {
  platform: string;
  /** The digest the executor wrote to its termination message. */
  digest: string;
}

/** Options of {@link runJobs}. */
export interface RunOptions {
  client: KubeClient;
  buildId: string;
  /** Label selector of the build's objects. */
  selector: string;
  /** Time limit in ms. */
  timeout: number;
  signal: AbortSignal;
}

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;
const jobsPath = (ns: string) => `/apis/batch/v1/namespaces/${ns}/jobs`;
const podsPath = (ns: string) => `/api/v1/namespaces/${ns}/pods`;

/** Runs the Jobs; resolves with one result per Job, in order, or throws the first failure. */
export async function runJobs(runs: readonly JobRun[], options: RunOptions): Promise<JobResult[]> {
  const { client } = options;
  const ns = client.namespace;
  const stop = new AbortController();
  const timeout = AbortSignal.timeout(options.timeout);
  const signal = AbortSignal.any([options.signal, timeout, stop.signal]);
  const created: string[] = [];
  const tracker = new Tracker(runs);
  // If the process exits before the cleanup below (another SIGINT handler calling Deno.exit),
  // at least say how to remove what is left.
  const onUnload = () =>
    log.warn(
      `exiting before the build's Jobs were deleted: kubectl delete jobs -n ${ns} ` +
        `-l ${options.selector}`,
    );
  globalThis.addEventListener("unload", onUnload);
  const watches = [
    watchResources({
      client,
      path: jobsPath(ns),
      resource: "jobs.batch",
      labelSelector: options.selector,
      schema: JobSchema,
      onEvent: (_, job) => tracker.job(job),
      signal,
    }),
    watchResources({
      client,
      path: podsPath(ns),
      resource: "pods",
      labelSelector: options.selector,
      schema: PodSchema,
      onEvent: (type, pod) => type !== "DELETED" && tracker.pod(pod),
      signal,
    }),
  ].map((p) => p.catch((e) => tracker.fail(e)));
  try {
    await createJobs(client, runs, created, signal);
    await tracker.done(signal);
    return await Promise.all(runs.map((run) => resultOf(run, tracker, options, signal)));
  } catch (e) {
    if (timeout.aborted && !options.signal.aborted) throw timeoutError(options.timeout, tracker);
    if (e instanceof JobFailed) throw await failureError(e, client, options.selector, signal);
    throw options.signal.aborted ? (options.signal.reason ?? e) : e;
  } finally {
    stop.abort();
    await Promise.all(watches);
    const seen = [...tracker.jobs.values()].map((j) => j.metadata.name);
    const listed = await listJobs(client, options);
    await deleteJobs(client, [...new Set([...created, ...seen, ...listed])]);
    globalThis.removeEventListener("unload", onUnload);
  }
}

/** Creates the Jobs in parallel; every one created is in `created` even when another fails. */
async function createJobs(
  client: KubeClient,
  runs: readonly JobRun[],
  created: string[],
  signal: AbortSignal,
): Promise<void> {
  const ns = client.namespace;
  const results = await Promise.allSettled(runs.map(async (run) => {
    await client.json(
      jobsPath(ns),
      {
        verb: "create",
        resource: "jobs.batch",
        namespace: ns,
      },
      JobSchema,
      { method: "POST", body: run.manifest, signal },
    );
    created.push(nameOf(run));
    log.info(`${run.platform}: created Job ${nameOf(run)} in namespace ${ns}`);
  }));
  const failed = results.find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
}

function nameOf(run: JobRun): string {
  return (run.manifest.metadata as { name: string }).name;
}

class JobFailed extends Error {
  constructor(readonly run: JobRun, readonly job: Job, readonly pod: Pod | undefined) {
    super(`Job ${nameOf(run)} failed`);
  }
}

/** Follows the build's Jobs and Pods. */
class Tracker {
  readonly #runs: readonly JobRun[];
  readonly jobs = new Map<string, Job>();
  readonly pods = new Map<string, Pod>();
  #phases = new Map<string, string>();
  #wake?: () => void;
  #error?: unknown;

  constructor(runs: readonly JobRun[]) {
    this.#runs = runs;
  }

  job(job: Job): void {
    const run = this.#runs.find((r) => nameOf(r) === job.metadata.name);
    if (!run) return;
    this.jobs.set(run.slug, job);
    this.#wake?.();
  }

  pod(pod: Pod): void {
    const slug = pod.metadata.labels?.[LABELS.platform];
    const run = this.#runs.find((r) => r.slug === slug);
    if (!run) return;
    this.pods.set(run.slug, pod);
    const phase = describePod(pod);
    if (this.#phases.get(pod.metadata.name) !== phase) {
      this.#phases.set(pod.metadata.name, phase);
      log.info(`${run.platform}: pod ${pod.metadata.name}: ${phase}`);
    }
    this.#wake?.();
  }

  fail(e: unknown): void {
    this.#error ??= e;
    this.#wake?.();
  }

  /** Resolves when every Job completed; throws the first failure. */
  async done(signal: AbortSignal): Promise<void> {
    for (;;) {
      signal.throwIfAborted();
      if (this.#error) throw this.#error;
      let pending = 0;
      for (const run of this.#runs) {
        const job = this.jobs.get(run.slug);
        const conditions = job?.status?.conditions;
        if (job && hasCondition(conditions, "Failed")) {
          throw new JobFailed(run, job, this.pods.get(run.slug));
        }
        if (!hasCondition(conditions, "Complete")) pending++;
      }
      if (pending === 0) return;
      await new Promise<void>((resolve) => {
        const wake = () => {
          signal.removeEventListener("abort", wake);
          this.#wake = undefined;
          resolve();
        };
        this.#wake = wake;
        signal.addEventListener("abort", wake, { once: true });
      });
    }
  }

  /** For the timeout message: where each unfinished Job is. */
  status(): string {
    return this.#runs.filter((r) =>
      !hasCondition(this.jobs.get(r.slug)?.status?.conditions, "Complete")
    )
      .map((r) => {
        const pod = this.pods.get(r.slug);
        return `${r.platform} (${pod ? describePod(pod) : "no pod yet"})`;
      }).join(", ");
  }
}

/** `Pending: Unschedulable: 0/3 nodes are available…`, `Running on node-1`, … */
export function describePod(pod: Pod): string {
  const status = pod.status ?? {};
  const phase = status.phase ?? "Pending";
  const waiting = status.containerStatuses?.[0]?.state?.waiting;
  if (waiting?.reason && waiting.reason !== "ContainerCreating") {
    return `${phase}: ${waiting.reason}${waiting.message ? `: ${waiting.message}` : ""}`;
  }
  const unschedulable = status.conditions?.find((c) =>
    c.type === "PodScheduled" && c.status === "False"
  );
  if (unschedulable) {
    return `${phase}: ${unschedulable.reason ?? "not scheduled"}: ${unschedulable.message ?? ""}`
      .trim();
  }
  const node = pod.spec?.nodeName;
  return node ? `${phase} on node ${node}` : phase;
}

async function resultOf(
  run: JobRun,
  tracker: Tracker,
  options: RunOptions,
  signal: AbortSignal,
): Promise<JobResult> {
  let pod = tracker.pods.get(run.slug);
  let message = terminated(pod)?.message?.trim();
  if (!message || !DIGEST_RE.test(message)) {
    // The Job's Complete event can arrive before the pod's last update: read the pods.
    const pods = await listPods(options.client, options.selector, run.slug, signal);
    pod = pods.find((p) => terminated(p)?.exitCode === 0) ?? pod;
    message = terminated(pod)?.message?.trim();
  }
  if (!message || !DIGEST_RE.test(message)) {
    throw new KanikoError(
      `${run.platform}: Job ${nameOf(run)} succeeded but its termination message holds no digest`,
      { hint: "the executor image must support --digest-file (check --executor-image)" },
    );
  }
  return { platform: run.platform, digest: message };
}

/** The pods of one platform's Job. */
async function listPods(
  client: KubeClient,
  selector: string,
  slug: string,
  signal: AbortSignal,
): Promise<Pod[]> {
  const list = await client.json(
    podsPath(client.namespace),
    {
      verb: "list",
      resource: "pods",
      namespace: client.namespace,
    },
    listSchema(PodSchema),
    {
      query: { labelSelector: `${selector},${LABELS.platform}=${slug}` },
      signal,
    },
  );
  return list.items ?? [];
}

function terminated(pod: Pod | undefined) {
  const statuses = pod?.status?.containerStatuses ?? [];
  return (statuses.find((s) => s.name === CONTAINER) ?? statuses[0])?.state?.terminated ??
    undefined;
}

async function failureError(
  e: JobFailed,
  client: KubeClient,
  selector: string,
  signal: AbortSignal,
) {
  const condition = e.job.status?.conditions?.find((c) => c.type === "Failed");
  let pod = e.pod;
  if (!terminated(pod)) {
    // The Job's Failed event can arrive before the pod's: read the pods.
    const pods = await listPods(client, selector, e.run.slug, signal).catch(() => []);
    pod = pods.find((p) => terminated(p)) ?? pods[0] ?? pod;
  }
  const term = terminated(pod);
  const parts = [`${e.run.platform}: Job ${nameOf(e.run)} failed`];
  if (term) parts.push(`exit code ${term.exitCode}${term.reason ? ` (${term.reason})` : ""}`);
  else if (condition?.reason) parts.push(`${condition.reason}: ${condition.message ?? ""}`.trim());
  if (pod) {
    const tail = await podLog(client, pod.metadata.name, signal);
    for (const line of tail) log.error(`${e.run.platform} | ${line}`);
    const last = [...tail].reverse().find((l) => l.trim() !== "") ?? term?.message?.trim();
    if (last) parts.push(last.replace(/^error:\s*/, ""));
  }
  const exitCode = term && term.exitCode > 0 && term.exitCode < 256 ? term.exitCode : 1;
  return new KanikoError(parts.join(": "), {
    hint: pod ? `the pod log is above (kubectl logs ${pod.metadata.name})` : undefined,
    exitCode,
  });
}

/** The last 50 lines of a pod's executor log; empty when it cannot be read. */
export async function podLog(client: KubeClient, pod: string, signal?: AbortSignal) {
  try {
    const res = await client.request(
      `/api/v1/namespaces/${client.namespace}/pods/${pod}/log`,
      { verb: "get", resource: "pods/log", namespace: client.namespace, name: pod },
      { query: { container: CONTAINER, tailLines: "50" }, signal },
    );
    return (await res.text()).split("\n").filter((l, i, all) => l !== "" || i < all.length - 1);
  } catch (e) {
    log.warn(`could not read the log of pod ${pod}: ${(e as Error).message}`);
    return [];
  }
}

function timeoutError(ms: number, tracker: Tracker): KanikoError {
  return new KanikoError(
    `the k8s Jobs did not finish within ${Math.round(ms / 1000)}s: ${tracker.status()}`,
    { hint: "raise --k8s-timeout, or check the cluster (kubectl get jobs,pods)" },
  );
}

/** The names of the build's Jobs, as a last look before deleting (never throws). */
async function listJobs(client: KubeClient, options: RunOptions): Promise<string[]> {
  try {
    const list = await client.json(
      jobsPath(client.namespace),
      {
        verb: "list",
        resource: "jobs.batch",
        namespace: client.namespace,
      },
      listSchema(JobSchema),
      {
        query: { labelSelector: options.selector },
        signal: AbortSignal.timeout(10_000),
      },
    );
    return (list.items ?? []).map((j) => j.metadata.name);
  } catch {
    return [];
  }
}

/** Deletes Jobs (and, in the background, their Pods); never throws. */
export async function deleteJobs(client: KubeClient, names: readonly string[]): Promise<void> {
  const ns = client.namespace;
  await Promise.all(names.map(async (name) => {
    try {
      const res = await client.request(`${jobsPath(ns)}/${name}`, {
        verb: "delete",
        resource: "jobs.batch",
        namespace: ns,
        name,
      }, {
        method: "DELETE",
        query: { propagationPolicy: "Background" },
        signal: AbortSignal.timeout(30_000),
      });
      await res.body?.cancel();
      log.debug("deleted Job", { name });
    } catch (e) {
      if ((e as { status?: number }).status === 404) return;
      log.warn(`could not delete Job ${name}: ${(e as Error).message}`, {
        hint: `kubectl delete job -n ${ns} ${name}`,
      });
    }
  }));
}
