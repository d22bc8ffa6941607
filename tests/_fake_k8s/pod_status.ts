/**
 * Helpers for pod and job status objects: conditions with `lastTransitionTime` kept while the
 * status does not change, container states, and the ids a kubelet reports.
 * @module
 */
import { now } from "./store.ts";

/** A pod or job condition. */
export interface Condition {
  type: string;
  status: "True" | "False" | "Unknown";
  reason?: string;
  message?: string;
  lastProbeTime: string | null;
  lastTransitionTime: string;
}

/** Sets (or adds) a condition; the transition time changes only when the status does. */
export function setCondition(
  list: Condition[],
  type: string,
  status: Condition["status"],
  reason?: string,
  message?: string,
): Condition[] {
  const old = list.find((c) => c.type === type);
  const c: Condition = {
    type,
    status,
    ...(reason ? { reason } : {}),
    ...(message ? { message } : {}),
    lastProbeTime: old?.lastProbeTime ?? null,
    lastTransitionTime: old && old.status === status ? old.lastTransitionTime : now(),
  };
  return old ? list.map((x) => (x === old ? c : x)) : [...list, c];
}

function hex(n: number): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(n)),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
}

/** A fresh `containerd://…` container id. */
export function containerId(): string {
  return `containerd://${hex(32)}`;
}

/** A pod IP in 10.244.0.0/16. */
export function podIp(): string {
  const [a, b] = crypto.getRandomValues(new Uint8Array(2));
  return `10.244.${a}.${Math.max(2, b)}`;
}

const ALPHABET = "bcdfghjklmnpqrstvwxz2456789";

/** Five characters of apimachinery's `utilrand.String` alphabet, for generateName. */
export function randomSuffix(n = 5): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => ALPHABET[b % ALPHABET.length])
    .join("");
}

/** The terminated state of a container. */
export function terminatedState(
  exitCode: number,
  message: string,
  startedAt: string,
  cid: string,
): Record<string, unknown> {
  return {
    terminated: {
      exitCode,
      ...(exitCode > 128 ? { signal: exitCode - 128 } : {}),
      reason: exitCode === 0 ? "Completed" : "Error",
      ...(message ? { message } : {}),
      startedAt,
      finishedAt: now(),
      containerID: cid,
    },
  };
}
