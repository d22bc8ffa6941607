/**
 * The simulated kubelet: runs a scheduled pod's first container as a local process
 * ({@link prepareContainer}, a {@link CommandRunner}) and walks the pod through Kubernetes'
 * phases and container states: Pending/ContainerCreating → Running → Succeeded/Failed with
 * `state.terminated` (exitCode, reason Completed/Error, message from the termination file,
 * startedAt, finishedAt). `restartPolicy: OnFailure` restarts the container in place
 * (`restartCount`, `lastState`). Deleting a pod sends SIGTERM to its process group and SIGKILL
 * after the grace period.
 * @module
 */
import type { NodeSpec } from "./nodes.ts";
import { containerId, podIp, setCondition, terminatedState } from "./pod_status.ts";
import type { CommandRunner, RunningProcess } from "./runner.ts";
import {
  prepareContainer,
  type PreparedContainer,
  StartError,
  terminationMessage,
} from "./container.ts";
import { type KObject, now, type Store } from "./store.ts";

/** Options of the {@link Kubelet}. */
export interface KubeletOptions {
  /** Default executor argv (a node's own `executor` wins). */
  executor: string[];
  /** Whether the default executor is our CLI (then `--isolation=chroot` is appended). */
  appendIsolation: boolean;
  runner: CommandRunner;
  /** Called after every status change of a pod the kubelet made. */
  onPodChange(pod: KObject): void;
  /** Called with every chunk of a pod's log (debugging). */
  onLog?(pod: string, text: string): void;
  /** Cap on the grace period on deletion, in seconds (tests need not wait 30 s). */
  maxGraceSeconds: number;
  /** Delay before restarting a failed container (OnFailure), ms. */
  restartDelayMs: number;
}

interface Runtime {
  ns: string;
  name: string;
  dir: string;
  chunks: Uint8Array[];
  proc?: RunningProcess;
  stopped: boolean;
  done: Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs pods on the simulated nodes. */
export class Kubelet {
  #rt = new Map<string, Runtime>();
  constructor(readonly store: Store, readonly opts: KubeletOptions) {}

  #update(rt: Runtime, fn: (p: KObject) => void): KObject | undefined {
    const p = this.store.update("pods", rt.ns, rt.name, (p) => {
      if (p.metadata.deletionTimestamp && rt.stopped) return false;
      fn(p);
    });
    if (p) this.opts.onPodChange(p);
    return p;
  }

  /** Starts running a pod that was just bound to `node`. */
  start(pod: KObject, node: NodeSpec): void {
    const rt: Runtime = {
      ns: pod.metadata.namespace!,
      name: pod.metadata.name,
      dir: Deno.makeTempDirSync({ prefix: `fake-k8s-${pod.metadata.name}-` }),
      chunks: [],
      stopped: false,
      done: Promise.resolve(),
    };
    this.#rt.set(pod.metadata.uid!, rt);
    rt.done = this.#run(rt, node).catch((e) => {
      this.#update(rt, (p) => {
        p.status.containerStatuses[0].state = {
          waiting: { reason: "RunContainerError", message: String(e) },
        };
      });
    });
  }

  async #prepare(rt: Runtime, node: NodeSpec): Promise<PreparedContainer | undefined> {
    while (!rt.stopped) {
      const pod = this.store.find("pods", rt.ns, rt.name);
      if (!pod) return undefined;
      try {
        return await prepareContainer(pod, {
          executor: node.executor ?? this.opts.executor,
          appendIsolation: node.executor ? false : this.opts.appendIsolation,
          podDir: rt.dir,
          secret: (name) => this.store.find("secrets", rt.ns, name),
        });
      } catch (e) {
        if (!(e instanceof StartError)) throw e;
        this.#update(rt, (p) => {
          p.status.containerStatuses[0].state = {
            waiting: { reason: e.reason, message: e.message },
          };
        });
        await sleep(300);
      }
    }
    return undefined;
  }

  async #run(rt: Runtime, node: NodeSpec): Promise<void> {
    const prepared = await this.#prepare(rt, node);
    if (!prepared) return;
    const ip = podIp();
    for (let restarts = 0;; restarts++) {
      if (rt.stopped) return;
      const startedAt = now();
      const cid = containerId();
      await Deno.writeFile(prepared.terminationFile, new Uint8Array());
      rt.proc = (node.runner ?? this.opts.runner)({
        ...prepared,
        platform: node.platform,
        onOutput: (c) => {
          rt.chunks.push(c);
          this.opts.onLog?.(rt.name, new TextDecoder().decode(c));
        },
      });
      this.#update(rt, (p) => markRunning(p, startedAt, cid, ip));
      const code = await rt.proc.exit;
      if (rt.stopped) return;
      const pod = this.store.find("pods", rt.ns, rt.name);
      if (!pod) return;
      const c = pod.spec.containers[0];
      const msg = await terminationMessage(
        prepared.terminationFile,
        c.terminationMessagePolicy,
        code,
        this.logText(pod.metadata.uid!) ?? "",
      );
      const state = terminatedState(code, msg, startedAt, cid);
      if (code !== 0 && pod.spec.restartPolicy === "OnFailure") {
        this.#update(rt, (p) => markRestarting(p, state));
        await sleep(this.opts.restartDelayMs);
        continue;
      }
      this.#update(rt, (p) => markTerminated(p, state, code));
      return;
    }
  }

  /** The log of a pod (stdout and stderr), or undefined when it never ran here. */
  logText(uid: string): string | undefined {
    const rt = this.#rt.get(uid);
    if (!rt) return undefined;
    const all = new Uint8Array(rt.chunks.reduce((n, c) => n + c.length, 0));
    let off = 0;
    for (const c of rt.chunks) {
      all.set(c, off);
      off += c.length;
    }
    return new TextDecoder().decode(all);
  }

  /**
   * Stops a pod's process: SIGTERM to its group, SIGKILL after `graceSeconds` (capped), then
   * removes its scratch dir. Resolves when the process is gone.
   */
  async stop(uid: string, graceSeconds: number): Promise<void> {
    const rt = this.#rt.get(uid);
    if (!rt) return;
    rt.stopped = true;
    if (rt.proc) {
      rt.proc.kill("SIGTERM");
      const grace = Math.min(graceSeconds, this.opts.maxGraceSeconds) * 1000;
      const killed = await Promise.race([
        rt.proc.exit.then(() => true),
        sleep(grace).then(() => false),
      ]);
      if (!killed) rt.proc.kill("SIGKILL");
      await rt.proc.exit;
    }
    await rt.done;
    this.#rt.delete(uid);
    await Deno.remove(rt.dir, { recursive: true }).catch(() => {});
  }

  /** Stops every pod (cluster shutdown). */
  async stopAll(): Promise<void> {
    await Promise.all([...this.#rt.keys()].map((uid) => this.stop(uid, 0)));
  }
}

function markRunning(p: KObject, startedAt: string, cid: string, ip: string): void {
  const cs = p.status.containerStatuses[0];
  p.status.phase = "Running";
  p.status.podIP = ip;
  p.status.podIPs = [{ ip }];
  cs.state = { running: { startedAt } };
  cs.ready = true;
  cs.started = true;
  cs.containerID = cid;
  let conds = setCondition(p.status.conditions, "PodReadyToStartContainers", "True");
  conds = setCondition(conds, "ContainersReady", "True");
  p.status.conditions = setCondition(conds, "Ready", "True");
}

function notReady(p: KObject, reason: string): void {
  const conds = setCondition(p.status.conditions, "ContainersReady", "False", reason);
  p.status.conditions = setCondition(conds, "Ready", "False", reason);
}

function markRestarting(p: KObject, state: Record<string, unknown>): void {
  const cs = p.status.containerStatuses[0];
  cs.lastState = state;
  cs.restartCount = (cs.restartCount ?? 0) + 1;
  cs.ready = false;
  cs.started = false;
  cs.state = {
    waiting: { reason: "CrashLoopBackOff", message: "back-off restarting failed container" },
  };
  notReady(p, "ContainersNotReady");
}

function markTerminated(p: KObject, state: Record<string, unknown>, code: number): void {
  const cs = p.status.containerStatuses[0];
  cs.state = state;
  cs.ready = false;
  cs.started = false;
  p.status.phase = code === 0 ? "Succeeded" : "Failed";
  notReady(p, "PodCompleted");
  p.status.conditions = setCondition(p.status.conditions, "PodReadyToStartContainers", "False");
}
