/**
 * The parts of Kubernetes objects the driver reads (Jobs, Pods, Nodes, lists and watch events),
 * as zod schemas: everything read from the API server is validated.
 * @module
 */
import { z } from "zod";

/** `metadata` of any object. */
export const ObjectMetaSchema = z.looseObject({
  name: z.string(),
  namespace: z.string().optional(),
  uid: z.string().optional(),
  resourceVersion: z.string().optional(),
  labels: z.record(z.string(), z.string()).nullish(),
  creationTimestamp: z.string().nullish(),
});

const ConditionSchema = z.looseObject({
  type: z.string(),
  status: z.string(),
  reason: z.string().nullish(),
  message: z.string().nullish(),
});

/** A `batch/v1` Job. */
export const JobSchema = z.looseObject({
  metadata: ObjectMetaSchema,
  status: z.looseObject({
    conditions: z.array(ConditionSchema).nullish(),
    active: z.number().nullish(),
    succeeded: z.number().nullish(),
    failed: z.number().nullish(),
  }).nullish(),
});
/** A Job as read. */
export type Job = z.infer<typeof JobSchema>;

const TerminatedSchema = z.looseObject({
  exitCode: z.number(),
  reason: z.string().nullish(),
  message: z.string().nullish(),
});

const ContainerStatusSchema = z.looseObject({
  name: z.string(),
  state: z.looseObject({
    terminated: TerminatedSchema.nullish(),
    waiting: z.looseObject({ reason: z.string().nullish(), message: z.string().nullish() })
      .nullish(),
    running: z.unknown().optional(),
  }).nullish(),
});

/** A Pod. */
export const PodSchema = z.looseObject({
  metadata: ObjectMetaSchema,
  spec: z.looseObject({ nodeName: z.string().nullish() }).nullish(),
  status: z.looseObject({
    phase: z.string().nullish(),
    reason: z.string().nullish(),
    message: z.string().nullish(),
    conditions: z.array(ConditionSchema).nullish(),
    containerStatuses: z.array(ContainerStatusSchema).nullish(),
  }).nullish(),
});
/** A Pod as read. */
export type Pod = z.infer<typeof PodSchema>;

/** A Node. */
export const NodeSchema = z.looseObject({
  metadata: ObjectMetaSchema,
  spec: z.looseObject({ unschedulable: z.boolean().nullish() }).nullish(),
  status: z.looseObject({ conditions: z.array(ConditionSchema).nullish() }).nullish(),
});
/** A Node as read. */
export type Node = z.infer<typeof NodeSchema>;

/** A list of objects of one kind. */
export function listSchema<T extends z.ZodType>(item: T) {
  return z.looseObject({
    metadata: z.looseObject({
      resourceVersion: z.string().optional(),
      continue: z.string().nullish(),
    }),
    items: z.array(item).nullish(),
  });
}

/** One line of a watch stream. */
export const WatchEventSchema = z.looseObject({
  type: z.enum(["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]),
  object: z.looseObject({ metadata: z.looseObject({}).optional() }),
});
/** A watch event, the object not yet validated. */
export type WatchEvent = z.infer<typeof WatchEventSchema>;

/** True when a condition of that type is `True`. */
export function hasCondition(
  conditions: readonly { type: string; status: string }[] | null | undefined,
  type: string,
): boolean {
  return (conditions ?? []).some((c) => c.type === type && c.status === "True");
}
