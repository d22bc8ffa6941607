/**
 * zod schemas of the request bodies the fake accepts (Job, Secret, DeleteOptions). They check
 * JSON types, as decoding does in kube-apiserver (a type error is 400 BadRequest); unknown
 * fields are kept. Semantic checks (422 Invalid) are in `validation.ts`.
 * @module
 */
import { z } from "zod";

const meta = z.looseObject({
  name: z.string().optional(),
  generateName: z.string().optional(),
  namespace: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});

const envVar = z.looseObject({
  name: z.string(),
  value: z.string().optional(),
  valueFrom: z.looseObject({
    secretKeyRef: z.looseObject({
      name: z.string().optional(),
      key: z.string(),
      optional: z.boolean().optional(),
    }).optional(),
  }).optional(),
});

const container = z.looseObject({
  name: z.string().optional(),
  image: z.string().optional(),
  command: z.array(z.string()).optional(),
  args: z.array(z.string()).optional(),
  env: z.array(envVar).optional(),
  workingDir: z.string().optional(),
  volumeMounts: z.array(z.looseObject({
    name: z.string(),
    mountPath: z.string(),
    readOnly: z.boolean().optional(),
    subPath: z.string().optional(),
  })).optional(),
  terminationMessagePath: z.string().optional(),
  terminationMessagePolicy: z.string().optional(),
});

const volume = z.looseObject({
  name: z.string(),
  secret: z.looseObject({
    secretName: z.string().optional(),
    items: z.array(z.looseObject({
      key: z.string(),
      path: z.string(),
      mode: z.number().int().optional(),
    })).optional(),
    defaultMode: z.number().int().optional(),
    optional: z.boolean().optional(),
  }).optional(),
  emptyDir: z.looseObject({}).optional(),
});

/** A `batch/v1` Job as posted. */
export const jobSchema = z.looseObject({
  apiVersion: z.string().optional(),
  kind: z.string().optional(),
  metadata: meta,
  spec: z.looseObject({
    backoffLimit: z.number().int().optional(),
    activeDeadlineSeconds: z.number().int().optional(),
    ttlSecondsAfterFinished: z.number().int().optional(),
    completions: z.number().int().optional(),
    parallelism: z.number().int().optional(),
    template: z.looseObject({
      metadata: meta.optional(),
      spec: z.looseObject({
        containers: z.array(container).optional(),
        restartPolicy: z.string().optional(),
        nodeSelector: z.record(z.string(), z.string()).optional(),
        volumes: z.array(volume).optional(),
        serviceAccountName: z.string().optional(),
        terminationGracePeriodSeconds: z.number().int().optional(),
      }),
    }),
  }),
});

/** A parsed Job body. */
export type JobBody = z.infer<typeof jobSchema>;

/** A core/v1 Secret as posted (`data` base64, `stringData` plain). */
export const secretSchema = z.looseObject({
  apiVersion: z.string().optional(),
  kind: z.string().optional(),
  metadata: meta,
  type: z.string().optional(),
  data: z.record(z.string(), z.string()).optional(),
  stringData: z.record(z.string(), z.string()).optional(),
});

/** `metav1.DeleteOptions` (body of DELETE, optional). */
export const deleteOptionsSchema = z.looseObject({
  propagationPolicy: z.enum(["Orphan", "Background", "Foreground"]).optional(),
  gracePeriodSeconds: z.number().int().optional(),
});

/** Formats a zod error as apimachinery's decode errors look (one line). */
export function decodeError(kind: string, err: z.ZodError): string {
  const first = err.issues[0];
  return `${kind} in version "v1" cannot be handled as a ${kind}: ${
    first.path.join(".")
  }: ${first.message}`;
}
