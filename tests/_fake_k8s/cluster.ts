/**
 * The simulated cluster behind the fake API server: storage, nodes, the scheduler (pending pods
 * are retried whenever a node changes), the kubelet, the Job controller, garbage collection
 * (`propagationPolicy` Orphan / Background / Foreground) and graceful pod deletion.
 * @module
 */
import { join } from "node:path";
import { type CommandRunner, spawnRunner } from "./runner.ts";
import { JobController, ownedBy, podForJob } from "./jobs.ts";
import { Kubelet } from "./kubelet.ts";
import {
  bind,
  markUnschedulable,
  nodeObject,
  type NodeSpec,
  place,
  setNodeReady,
} from "./nodes.ts";
import { randomSuffix } from "./pod_status.ts";
import { type KObject, now, Store } from "./store.ts";
import { defaultJob, validateJob, validateSecret } from "./validation.ts";

/** The repository root (where `cli.ts` is). */
export const REPO_ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

/** Options of a {@link Cluster}. */
export interface ClusterOptions {
  nodes?: NodeSpec[];
  /** Executor argv replacing the container's entrypoint; default `deno run -A <repo>/cli.ts`. */
  executor?: string[];
  /** Default {@link spawnRunner}. */
  runner?: CommandRunner;
  /** Watch window: changes retained for watches (older resourceVersions get 410). */
  watchWindow?: number;
  /** Cap on pod termination grace, seconds (default 5). */
  maxGraceSeconds?: number;
  /** Delay before a failed Job pod is replaced, ms (default 500). */
  retryDelayMs?: number;
  /** Called with pod log output as it arrives (debugging). */
  onLog?(pod: string, text: string): void;
}

/** A `Status` of kind Success, as DELETE answers when an object is gone at once. */
export function success(name: string, group: string, kind: string, uid?: string) {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Success",
    details: { name, group, kind, uid },
  };
}

/** The simulated cluster. */
export class Cluster {
  readonly store: Store;
  readonly kubelet: Kubelet;
  readonly jobs: JobController;
  /** Every Job as it was created (kept after deletion, for assertions). */
  readonly createdJobs: KObject[] = [];
  /** Every (namespace, name, propagationPolicy) of a Job DELETE. */
  readonly deletedJobs: { namespace: string; name: string; propagationPolicy: string }[] = [];
  /** Every pod bound to a node: where each Job's pods ran (kept after deletion). */
  readonly boundPods: { namespace: string; name: string; job?: string; node: string }[] = [];
  #nodes = new Map<string, NodeSpec>();
  #pending = new Set<string>();
  #deleting = new Map<string, Promise<void>>();

  constructor(opts: ClusterOptions = {}) {
    this.store = new Store(opts.watchWindow ?? 1000);
    this.kubelet = new Kubelet(this.store, {
      executor: opts.executor ?? [Deno.execPath(), "run", "-A", join(REPO_ROOT, "cli.ts")],
      appendIsolation: opts.executor === undefined,
      runner: opts.runner ?? spawnRunner,
      maxGraceSeconds: opts.maxGraceSeconds ?? 5,
      restartDelayMs: 200,
      onLog: opts.onLog,
      onPodChange: (p) => this.#podChanged(p),
    });
    this.jobs = new JobController({
      store: this.store,
      createPod: (p) => this.createPod(p),
      deletePod: (ns, name) => this.deletePod(ns, name).done,
      deleteJob: async (ns, name) => void (await this.deleteJob(ns, name, "Background")),
      retryDelayMs: opts.retryDelayMs ?? 500,
    }, (job) => podForJob(job, randomSuffix()));
    for (const n of opts.nodes ?? []) this.addNode(n);
  }

  #podChanged(p: KObject): void {
    const owner = (p.metadata.ownerReferences ?? []).find((r) => r.kind === "Job" && r.controller);
    if (owner) this.jobs.sync(p.metadata.namespace!, owner.name);
  }

  /** Adds a node (and retries pending pods). */
  addNode(spec: NodeSpec): void {
    this.#nodes.set(spec.name, spec);
    this.store.create("nodes", nodeObject(spec));
    this.retryPending();
  }

  /** Marks a node Ready or NotReady (and retries pending pods). */
  setNodeReady(name: string, ready: boolean): void {
    setNodeReady(this.store, name, ready);
    this.retryPending();
  }

  /** Stores a pod and schedules it. */
  createPod(pod: KObject): KObject {
    const p = this.store.create("pods", pod);
    this.schedule(p.metadata.namespace!, p.metadata.name);
    return p;
  }

  /** Tries to bind a pod to a node and start it there. */
  schedule(ns: string, name: string): void {
    const pod = this.store.find("pods", ns, name);
    if (!pod || pod.spec.nodeName || pod.metadata.deletionTimestamp) return;
    const busy = (node: string) =>
      this.store.list("pods", undefined, (p) => p.spec.nodeName === node).length;
    const r = place(pod, this.store.list("nodes"), busy);
    if ("message" in r) {
      this.#pending.add(`${ns}/${name}`);
      this.store.update("pods", ns, name, (p) => markUnschedulable(p, r.message));
      return;
    }
    this.#pending.delete(`${ns}/${name}`);
    const bound = this.store.update("pods", ns, name, (p) => bind(p, r.node));
    if (!bound) return;
    this.boundPods.push({
      namespace: ns,
      name,
      job: bound.metadata.labels?.["job-name"],
      node: r.node.metadata.name,
    });
    this.kubelet.start(bound, this.#nodes.get(r.node.metadata.name)!);
  }

  /** Schedules pending pods again. */
  retryPending(): void {
    for (const k of [...this.#pending]) {
      const [ns, name] = k.split("/");
      this.schedule(ns, name);
    }
  }

  /** Validates, defaults and stores a Job, then starts it. */
  createJob(body: KObject): KObject {
    const uid = crypto.randomUUID();
    const job = structuredClone(body);
    job.apiVersion = "batch/v1";
    job.kind = "Job";
    defaultJob(job, uid);
    validateJob(job);
    job.metadata.uid = uid;
    job.status = {};
    const stored = this.store.create("jobs", job);
    this.createdJobs.push(structuredClone(stored));
    this.jobs.created(stored);
    return this.store.get("jobs", stored.metadata.namespace, stored.metadata.name);
  }

  /** Validates and stores a Secret (`stringData` folded into base64 `data`). */
  createSecret(body: KObject): KObject {
    const s = structuredClone(body);
    s.apiVersion = "v1";
    s.kind = "Secret";
    s.type ??= "Opaque";
    s.data = { ...s.data };
    for (const [k, v] of Object.entries<string>(s.stringData ?? {})) {
      s.data[k] = btoa(String.fromCharCode(...new TextEncoder().encode(v)));
    }
    delete s.stringData;
    validateSecret(s);
    return this.store.create("secrets", s);
  }

  /**
   * Deletes a pod gracefully: `deletionTimestamp` first (the process gets SIGTERM), removed once
   * its process is gone. Returns the pod as marked and a promise of its removal.
   */
  deletePod(ns: string, name: string, grace?: number): { object?: KObject; done: Promise<void> } {
    const k = `${ns}/${name}`;
    const pod = this.store.find("pods", ns, name);
    if (!pod) return { done: Promise.resolve() };
    const running = this.#deleting.get(k);
    if (running) return { object: pod, done: running };
    const g = grace ?? pod.spec.terminationGracePeriodSeconds ?? 30;
    const marked = this.store.update("pods", ns, name, (p) => {
      p.metadata.deletionTimestamp = new Date(Date.now() + g * 1000).toISOString().replace(
        /\.\d+Z$/,
        "Z",
      );
      p.metadata.deletionGracePeriodSeconds = g;
    });
    this.#pending.delete(k);
    const done = (async () => {
      await this.kubelet.stop(pod.metadata.uid!, g);
      const gone = this.store.remove("pods", ns, name);
      this.#deleting.delete(k);
      if (gone) this.#podChanged(gone);
    })();
    this.#deleting.set(k, done);
    return { object: marked, done };
  }

  /**
   * Deletes a Job. `Orphan` (the batch/v1 default) leaves its pods (their ownerReferences
   * removed), `Background` removes the Job at once and its pods after, `Foreground` marks the Job
   * (`deletionTimestamp`, finalizer `foregroundDeletion`) and removes it after its pods.
   */
  deleteJob(ns: string, name: string, policy = "Orphan"): KObject | ReturnType<typeof success> {
    const job = this.store.get("jobs", ns, name);
    const uid = job.metadata.uid!;
    this.deletedJobs.push({ namespace: ns, name, propagationPolicy: policy });
    const pods = this.store.list("pods", ns, (p) => ownedBy(p, uid));
    if (policy === "Foreground") {
      const marked = this.store.update("jobs", ns, name, (j) => {
        j.metadata.deletionTimestamp = now();
        j.metadata.deletionGracePeriodSeconds = 0;
        j.metadata.finalizers = [...(j.metadata.finalizers ?? []), "foregroundDeletion"];
      })!;
      Promise.all(pods.map((p) => this.deletePod(ns, p.metadata.name).done)).then(() => {
        this.jobs.forget(uid);
        this.store.remove("jobs", ns, name);
      });
      return marked;
    }
    this.jobs.forget(uid);
    this.store.remove("jobs", ns, name);
    for (const p of pods) {
      if (policy === "Background") this.deletePod(ns, p.metadata.name);
      else {
        this.store.update("pods", ns, p.metadata.name, (q) => {
          q.metadata.ownerReferences = q.metadata.ownerReferences?.filter((r) => r.uid !== uid);
        });
      }
    }
    return success(name, "batch", "jobs", uid);
  }

  /** Stops every process and timer. */
  async close(): Promise<void> {
    this.jobs.close();
    await this.kubelet.stopAll();
    await Promise.all([...this.#deleting.values()]);
  }
}
