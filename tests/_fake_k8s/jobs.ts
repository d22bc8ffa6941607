/**
 * The Job controller, as `batch/v1` behaves since 1.31: a Job gets `startTime` and one pod
 * (`<job>-<5 chars>`, labels `job-name`, `batch.kubernetes.io/job-name`, `controller-uid`,
 * `batch.kubernetes.io/controller-uid`, a controller ownerReference); pod results are counted
 * into `active`/`ready`/`succeeded`/`failed`; a failed pod is replaced until `backoffLimit` is
 * exceeded (OnFailure: container restarts count); then `FailureTarget` and, once the pods are
 * gone, `Failed` (reason `BackoffLimitExceeded`, or `DeadlineExceeded` after
 * `activeDeadlineSeconds`); success gives `SuccessCriteriaMet` and `Complete` (reason
 * `CompletionsReached`) with `completionTime`. `ttlSecondsAfterFinished` deletes finished Jobs.
 * @module
 */
import { setCondition } from "./pod_status.ts";
import { type KObject, now, type Store } from "./store.ts";

/** What the controller needs from the cluster. */
export interface JobHost {
  store: Store;
  /** Creates and schedules a pod. */
  createPod(pod: KObject): void;
  /** Deletes a pod gracefully; resolves when it is gone. */
  deletePod(ns: string, name: string): Promise<void>;
  /** Deletes a Job with background propagation (TTL). */
  deleteJob(ns: string, name: string): Promise<void>;
  /** Delay before replacing a failed pod, ms (the real controller backs off from 10 s). */
  retryDelayMs: number;
}

interface Counts {
  ok: Set<string>;
  failed: Set<string>;
  creating: boolean;
  timers: ReturnType<typeof setTimeout>[];
}

function finished(job: KObject): boolean {
  // deno-lint-ignore no-explicit-any
  return (job.status?.conditions ?? []).some((c: any) =>
    (c.type === "Complete" || c.type === "Failed" || c.type === "FailureTarget") &&
    c.status === "True"
  );
}

function terminal(p: KObject): boolean {
  return p.status?.phase === "Succeeded" || p.status?.phase === "Failed";
}

function ready(p: KObject): boolean {
  // deno-lint-ignore no-explicit-any
  return (p.status?.conditions ?? []).some((c: any) => c.type === "Ready" && c.status === "True");
}

/** The pod a Job's template gives (`generateName` `<job>-`). */
export function podForJob(job: KObject, suffix: string): KObject {
  const t = job.spec.template;
  const spec = structuredClone(t.spec);
  spec.serviceAccountName ??= "default";
  spec.serviceAccount = spec.serviceAccountName;
  spec.enableServiceLinks ??= true;
  spec.priority ??= 0;
  spec.tolerations ??= ["not-ready", "unreachable"].map((k) => ({
    key: `node.kubernetes.io/${k}`,
    operator: "Exists",
    effect: "NoExecute",
    tolerationSeconds: 300,
  }));
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: `${job.metadata.name}-${suffix}`,
      generateName: `${job.metadata.name}-`,
      namespace: job.metadata.namespace,
      labels: { ...t.metadata?.labels },
      annotations: { ...t.metadata?.annotations },
      ownerReferences: [{
        apiVersion: "batch/v1",
        kind: "Job",
        name: job.metadata.name,
        uid: job.metadata.uid,
        controller: true,
        blockOwnerDeletion: true,
      }],
    },
    spec,
    status: { phase: "Pending", qosClass: "BestEffort" },
  };
}

/** Whether a pod's controller is the Job with this uid. */
export function ownedBy(p: KObject, uid: string): boolean {
  // deno-lint-ignore no-explicit-any
  return (p.metadata.ownerReferences ?? []).some((r: any) => r.uid === uid && r.controller);
}

/** Runs Jobs. */
export class JobController {
  #counts = new Map<string, Counts>();
  #chains = new Map<string, Promise<void>>();
  constructor(readonly host: JobHost, readonly newPod: (job: KObject) => KObject) {}

  #c(uid: string): Counts {
    let c = this.#counts.get(uid);
    if (!c) {
      this.#counts.set(uid, c = { ok: new Set(), failed: new Set(), creating: false, timers: [] });
    }
    return c;
  }

  /** A Job was stored: start it (startTime, first pod, deadline timer). */
  created(job: KObject): void {
    const { namespace: ns, name, uid } = job.metadata;
    const c = this.#c(uid!);
    this.host.store.update("jobs", ns, name, (j) => {
      j.status = {
        startTime: now(),
        active: 1,
        ready: 0,
        terminating: 0,
        uncountedTerminatedPods: {},
      };
    });
    this.host.createPod(this.newPod(job));
    const ads = job.spec.activeDeadlineSeconds;
    if (ads !== undefined) c.timers.push(setTimeout(() => this.sync(ns!, name), ads * 1000));
  }

  /** Forgets a deleted Job's timers and counters. */
  forget(uid: string): void {
    for (const t of this.#counts.get(uid)?.timers ?? []) clearTimeout(t);
    this.#counts.delete(uid);
  }

  /** Forgets every Job (cluster shutdown). */
  close(): void {
    for (const uid of [...this.#counts.keys()]) this.forget(uid);
  }

  /** Reconciles a Job (serialised per Job). */
  sync(ns: string, name: string): Promise<void> {
    const k = `${ns}/${name}`;
    const next = (this.#chains.get(k) ?? Promise.resolve()).then(() => this.#sync(ns, name));
    const guarded = next.catch((e) => console.error(`fake-k8s: job ${k}: ${e}`));
    this.#chains.set(k, guarded);
    return guarded;
  }

  async #sync(ns: string, name: string): Promise<void> {
    const { store } = this.host;
    const job = store.find("jobs", ns, name);
    if (!job || job.metadata.deletionTimestamp || finished(job)) return;
    const uid = job.metadata.uid!;
    const c = this.#c(uid);
    const pods = store.list("pods", ns, (p) => ownedBy(p, uid));
    for (const p of pods) {
      if (p.status.phase === "Succeeded") c.ok.add(p.metadata.uid!);
      if (p.status.phase === "Failed") c.failed.add(p.metadata.uid!);
    }
    const active = pods.filter((p) => !terminal(p) && !p.metadata.deletionTimestamp);
    const failure = this.#failure(job, active, c);
    if (c.ok.size >= job.spec.completions) return this.#complete(job, c);
    if (failure) return await this.#fail(job, active, c, failure);
    this.#setCounts(job, active, c);
    if (active.length === 0 && !c.creating) {
      c.creating = true;
      c.timers.push(setTimeout(() => {
        c.creating = false;
        const j = store.find("jobs", ns, name);
        if (j && !j.metadata.deletionTimestamp && !finished(j)) this.host.createPod(this.newPod(j));
        this.sync(ns, name);
      }, this.host.retryDelayMs));
    }
  }

  #failure(job: KObject, active: KObject[], c: Counts): [string, string] | undefined {
    const limit = job.spec.backoffLimit;
    if (job.spec.template.spec.restartPolicy === "OnFailure") {
      const restarts = active.reduce(
        (n, p) => n + (p.status.containerStatuses?.[0]?.restartCount ?? 0),
        0,
      );
      if (limit === 0 ? restarts > 0 : restarts >= limit) {
        return ["BackoffLimitExceeded", "Job has reached the specified backoff limit"];
      }
    } else if (c.failed.size > limit) {
      return ["BackoffLimitExceeded", "Job has reached the specified backoff limit"];
    }
    const ads = job.spec.activeDeadlineSeconds;
    if (ads !== undefined && Date.now() - Date.parse(job.status.startTime) >= ads * 1000) {
      return ["DeadlineExceeded", "Job was active longer than specified deadline"];
    }
    return undefined;
  }

  #setCounts(job: KObject, active: KObject[], c: Counts): void {
    this.host.store.update("jobs", job.metadata.namespace, job.metadata.name, (j) => {
      const s = j.status;
      const want = {
        active: active.length,
        ready: active.filter(ready).length,
        succeeded: c.ok.size,
        failed: c.failed.size,
      };
      if (
        s.active === (want.active || undefined) && s.ready === want.ready &&
        s.succeeded === (want.succeeded || undefined) && s.failed === (want.failed || undefined)
      ) return false;
      Object.assign(s, { active: want.active || undefined, ready: want.ready });
      s.succeeded = want.succeeded || undefined;
      s.failed = want.failed || undefined;
    });
  }

  #complete(job: KObject, c: Counts): void {
    const msg = "Reached expected number of succeeded pods";
    this.host.store.update("jobs", job.metadata.namespace, job.metadata.name, (j) => {
      let conds = setCondition(
        j.status.conditions ?? [],
        "SuccessCriteriaMet",
        "True",
        "CompletionsReached",
        msg,
      );
      conds = setCondition(conds, "Complete", "True", "CompletionsReached", msg);
      Object.assign(j.status, {
        conditions: conds,
        completionTime: now(),
        active: undefined,
        ready: 0,
      });
      j.status.succeeded = c.ok.size;
      j.status.failed = c.failed.size || undefined;
    });
    this.#ttl(job);
  }

  async #fail(job: KObject, active: KObject[], c: Counts, [reason, msg]: [string, string]) {
    const { namespace: ns, name } = job.metadata;
    this.host.store.update("jobs", ns, name, (j) => {
      j.status.conditions = setCondition(
        j.status.conditions ?? [],
        "FailureTarget",
        "True",
        reason,
        msg,
      );
      j.status.terminating = active.length;
    });
    await Promise.all(active.map((p) => this.host.deletePod(ns!, p.metadata.name)));
    for (const p of active) c.failed.add(p.metadata.uid!);
    this.host.store.update("jobs", ns, name, (j) => {
      j.status.conditions = setCondition(j.status.conditions, "Failed", "True", reason, msg);
      Object.assign(j.status, {
        active: undefined,
        ready: 0,
        terminating: 0,
        failed: c.failed.size,
      });
      j.status.succeeded = c.ok.size || undefined;
    });
    this.#ttl(job);
  }

  #ttl(job: KObject): void {
    const ttl = job.spec.ttlSecondsAfterFinished;
    if (ttl === undefined) return;
    const { namespace: ns, name } = job.metadata;
    this.#c(job.metadata.uid!).timers.push(
      setTimeout(() => this.host.deleteJob(ns!, name), ttl * 1000),
    );
  }
}
