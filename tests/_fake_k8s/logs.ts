/**
 * `GET /api/v1/namespaces/NS/pods/NAME/log`: the container's stdout and stderr as text/plain,
 * with `container`, `tailLines`, `limitBytes` and `follow` (streams until the container stops).
 * A container that has not started gives 400 `container "c" in pod "p" is waiting to start:
 * ContainerCreating`, as kube-apiserver answers.
 * @module
 */
import type { Cluster } from "./cluster.ts";
import { badRequest } from "./status.ts";
import type { KObject } from "./store.ts";

/** The last `n` lines of a text (a final newline does not count as a line). */
export function tail(text: string, n: number): string {
  if (n <= 0) return "";
  const lines = text.split("\n");
  const trailing = lines.at(-1) === "";
  if (trailing) lines.pop();
  const kept = lines.slice(-n).join("\n");
  return trailing && kept ? kept + "\n" : kept;
}

function running(cluster: Cluster, ns: string, name: string): boolean {
  const p = cluster.store.find("pods", ns, name);
  return !!p && p.status.phase === "Running" && !p.metadata.deletionTimestamp;
}

/** The log response of a pod. */
export function podLogResponse(
  cluster: Cluster,
  pod: KObject,
  q: Record<string, string>,
  signal: AbortSignal,
): Response {
  const { name, namespace: ns, uid } = pod.metadata;
  const containers = pod.spec.containers.map((c: { name: string }) => c.name);
  const container = q.container ?? containers[0];
  if (!containers.includes(container)) {
    throw badRequest(`container ${container} is not valid for pod ${name}`);
  }
  const text = cluster.kubelet.logText(uid!);
  if (text === undefined) {
    const waiting = pod.status.containerStatuses?.[0]?.state?.waiting?.reason ??
      "ContainerCreating";
    throw badRequest(`container "${container}" in pod "${name}" is waiting to start: ${waiting}`);
  }
  const limit = q.limitBytes ? Number(q.limitBytes) : Infinity;
  const cut = (s: string) => {
    const b = new TextEncoder().encode(s);
    return b.length > limit ? b.slice(0, limit) : b;
  };
  const first = q.tailLines !== undefined ? tail(text, Number(q.tailLines)) : text;
  const headers = { "content-type": "text/plain" };
  if (q.follow !== "true" && q.follow !== "1") return new Response(cut(first), { headers });
  let sent = text.length;
  const stream = new ReadableStream<Uint8Array>({
    async start(ctl) {
      ctl.enqueue(new TextEncoder().encode(first));
      while (!signal.aborted && running(cluster, ns!, name)) {
        await new Promise((r) => setTimeout(r, 100));
        const now = cluster.kubelet.logText(uid!) ?? "";
        if (now.length > sent) ctl.enqueue(new TextEncoder().encode(now.slice(sent)));
        sent = now.length;
      }
      const rest = (cluster.kubelet.logText(uid!) ?? "").slice(sent);
      if (rest) ctl.enqueue(new TextEncoder().encode(rest));
      ctl.close();
    },
  });
  return new Response(stream, { headers });
}
