/**
 * Simulated nodes (a Node object with the well-known labels `kubernetes.io/os`,
 * `kubernetes.io/arch`, `kubernetes.io/hostname`, a Ready condition and, when not Ready, the
 * `node.kubernetes.io/not-ready` taint) and the scheduler: it binds a pod to a Ready node whose
 * labels match the pod's `nodeSelector`, or leaves it Pending with `PodScheduled=False`,
 * reason `Unschedulable` and kube-scheduler's message
 * (`0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. preemption: …`).
 * @module
 */
import { matchesMap } from "./labels.ts";
import { setCondition } from "./pod_status.ts";
import type { CommandRunner } from "./runner.ts";
import type { KObject, Store } from "./store.ts";

/** A simulated node. */
export interface NodeSpec {
  name: string;
  /** `os/arch[/variant]`, e.g. `linux/arm64` or `linux/arm/v7`. */
  platform: string;
  /** Default true. */
  ready?: boolean;
  /** Extra labels. */
  labels?: Record<string, string>;
  /** Executor argv for pods on this node (default: the cluster's, i.e. our CLI). */
  executor?: string[];
  /** Runner for pods on this node (default: the cluster's). */
  runner?: CommandRunner;
}

/** The Node object of a spec. */
export function nodeObject(spec: NodeSpec): KObject {
  const [os, arch, variant] = spec.platform.split("/");
  const ready = spec.ready ?? true;
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name: spec.name,
      labels: {
        "beta.kubernetes.io/arch": arch,
        "beta.kubernetes.io/os": os,
        "kubernetes.io/arch": arch,
        "kubernetes.io/hostname": spec.name,
        "kubernetes.io/os": os,
        ...spec.labels,
      },
      annotations: variant ? { "fake-k8s.kaniko.dev/variant": variant } : {},
    },
    spec: { podCIDR: "10.244.0.0/24", ...(ready ? {} : { taints: [notReadyTaint()] }) },
    status: {
      conditions: readyConditions(ready),
      addresses: [{ type: "InternalIP", address: "127.0.0.1" }, {
        type: "Hostname",
        address: spec.name,
      }],
      nodeInfo: {
        architecture: arch,
        operatingSystem: os,
        kubeletVersion: "v1.31.0",
        containerRuntimeVersion: "containerd://1.7.0",
        kernelVersion: "6.1.0",
        osImage: "fake-k8s simulated node",
      },
    },
  };
}

function notReadyTaint() {
  return { key: "node.kubernetes.io/not-ready", effect: "NoSchedule" };
}

function readyConditions(ready: boolean) {
  return setCondition(
    [],
    "Ready",
    ready ? "True" : "False",
    ready ? "KubeletReady" : "KubeletNotReady",
    ready ? "kubelet is posting ready status" : "container runtime network not ready",
  );
}

/** Marks a node Ready or not (condition and taint). */
export function setNodeReady(store: Store, name: string, ready: boolean): void {
  store.update("nodes", undefined, name, (n) => {
    n.status.conditions = setCondition(
      n.status.conditions,
      "Ready",
      ready ? "True" : "False",
      ready ? "KubeletReady" : "KubeletNotReady",
    );
    // deno-lint-ignore no-explicit-any
    const taints = (n.spec.taints ?? []).filter((t: any) =>
      t.key !== "node.kubernetes.io/not-ready"
    );
    n.spec.taints = ready ? taints : [...taints, notReadyTaint()];
  });
}

function isReady(n: KObject): boolean {
  // deno-lint-ignore no-explicit-any
  return n.status.conditions.some((c: any) => c.type === "Ready" && c.status === "True");
}

/** The result of a scheduling attempt. */
export type Placement = { node: KObject } | { message: string };

/** Picks a node for a pod (the least busy of those that fit), or explains why none fits. */
export function place(pod: KObject, nodes: KObject[], busy: (node: string) => number): Placement {
  const selector: Record<string, string> = pod.spec.nodeSelector ?? {};
  const fit: KObject[] = [];
  let tainted = 0;
  let mismatched = 0;
  for (const n of nodes) {
    if (!isReady(n)) tainted++;
    else if (!matchesMap(n.metadata.labels, selector)) mismatched++;
    else fit.push(n);
  }
  if (fit.length) {
    fit.sort((a, b) => busy(a.metadata.name) - busy(b.metadata.name));
    return { node: fit[0] };
  }
  const total = nodes.length;
  const reasons = [
    ...(mismatched ? [`${mismatched} node(s) didn't match Pod's node affinity/selector`] : []),
    ...(tainted
      ? [`${tainted} node(s) had untolerated taint {node.kubernetes.io/not-ready: }`]
      : []),
  ].sort();
  const head = `0/${total} nodes are available`;
  const message = total === 0
    ? "no nodes available to schedule pods"
    : `${head}: ${
      reasons.join(", ")
    }. preemption: ${head}: ${total} Preemption is not helpful for scheduling.`;
  return { message };
}

/** Marks a pod unschedulable (Pending, PodScheduled=False). */
export function markUnschedulable(p: KObject, message: string): void {
  p.status.phase = "Pending";
  p.status.conditions = setCondition(
    p.status.conditions ?? [],
    "PodScheduled",
    "False",
    "Unschedulable",
    message,
  );
}

/** Binds a pod to a node and sets the status a kubelet reports before the container starts. */
export function bind(p: KObject, node: KObject): void {
  p.spec.nodeName = node.metadata.name;
  p.status.hostIP = "127.0.0.1";
  p.status.hostIPs = [{ ip: "127.0.0.1" }];
  p.status.startTime = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  let conds = setCondition(p.status.conditions ?? [], "PodScheduled", "True");
  conds = setCondition(conds, "PodReadyToStartContainers", "False");
  conds = setCondition(conds, "Initialized", "True");
  conds = setCondition(
    conds,
    "Ready",
    "False",
    "ContainersNotReady",
    `containers with unready status: [${p.spec.containers[0].name}]`,
  );
  p.status.conditions = setCondition(
    conds,
    "ContainersReady",
    "False",
    "ContainersNotReady",
    `containers with unready status: [${p.spec.containers[0].name}]`,
  );
  // deno-lint-ignore no-explicit-any
  p.status.containerStatuses = p.spec.containers.map((c: any) => ({
    name: c.name,
    state: { waiting: { reason: "ContainerCreating" } },
    lastState: {},
    ready: false,
    restartCount: 0,
    image: c.image,
    imageID: "",
    started: false,
  }));
}
