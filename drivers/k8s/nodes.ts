/**
 * The `--require-native-nodes` check: every target platform needs at least one Ready,
 * schedulable node whose `kubernetes.io/os` and `kubernetes.io/arch` labels match (the
 * `beta.kubernetes.io/*` labels are accepted too). Variants have no standard label: when a node
 * carries {@link VARIANT_LABEL} it must match, otherwise any variant is accepted.
 * @module
 */
import { KanikoError } from "../../lib/errors.ts";
import type { Platform } from "../../lib/oci/schemas.ts";
import type { KubeClient } from "./client.ts";
import { hasCondition, listSchema, type Node, NodeSchema } from "./resources.ts";

/** A node label naming the architecture variant (`v7`, `v8`), when a cluster sets one. */
export const VARIANT_LABEL = "kaniko-deno.dev/arch-variant";

/** Lists the cluster's nodes (RBAC: the ClusterRole of deploy/rbac.yaml). */
export async function listNodes(client: KubeClient, signal?: AbortSignal): Promise<Node[]> {
  const list = await client.json(
    "/api/v1/nodes",
    { verb: "list", resource: "nodes" },
    listSchema(NodeSchema),
    { signal },
  );
  return list.items ?? [];
}

/** The `os/arch[/variant]` a node offers, or undefined when it is not usable for builds. */
export function nodePlatform(node: Node): string | undefined {
  if (!hasCondition(node.status?.conditions, "Ready")) return undefined;
  if (node.spec?.unschedulable) return undefined;
  const labels = node.metadata.labels ?? {};
  const os = labels["kubernetes.io/os"] ?? labels["beta.kubernetes.io/os"];
  const arch = labels["kubernetes.io/arch"] ?? labels["beta.kubernetes.io/arch"];
  if (!os || !arch) return undefined;
  const variant = labels[VARIANT_LABEL];
  return variant ? `${os}/${arch}/${variant}` : `${os}/${arch}`;
}

/** Whether a node platform (from {@link nodePlatform}) can build `target`. */
export function nodeMatches(nodePlatformText: string, target: Platform): boolean {
  const [os, arch, variant] = nodePlatformText.split("/");
  if (os !== target.os || arch !== target.architecture) return false;
  return variant === undefined || target.variant === undefined || variant === target.variant;
}

/** Throws one line naming every platform without a Ready node. */
export function requireNodes(
  nodes: readonly Node[],
  targets: readonly { platform: string; parsed: Platform }[],
): void {
  const offered = nodes.map(nodePlatform).filter((p): p is string => p !== undefined);
  const missing = targets.filter((t) => !offered.some((p) => nodeMatches(p, t.parsed)));
  if (missing.length === 0) return;
  const counts = new Map<string, number>();
  for (const p of offered) counts.set(p, (counts.get(p) ?? 0) + 1);
  const have = [...counts].map(([p, n]) => `${n} × ${p}`).join(", ") || "none";
  throw new KanikoError(
    `no Ready Kubernetes node for ${missing.map((t) => t.platform).join(", ")} ` +
      `(Ready nodes: ${have})`,
    {
      hint: "add nodes of those architectures or drop the platforms; " +
        "--require-native-nodes=false skips this check (the Jobs then wait for such nodes)",
      code: "NO_NATIVE_NODES",
    },
  );
}
