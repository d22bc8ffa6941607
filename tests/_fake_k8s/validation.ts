/**
 * Semantic validation (422 Invalid with field causes, as `ValidateJob` and `ValidateSecret` word
 * them) and defaulting (the values kube-apiserver fills in) of Jobs and Secrets.
 * @module
 */
import { invalid, type StatusCause } from "./status.ts";
import type { KObject } from "./store.ts";

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function required(field: string): StatusCause {
  return { reason: "FieldValueRequired", message: "Required value", field };
}

function bad(field: string, value: unknown, detail: string): StatusCause {
  return {
    reason: "FieldValueInvalid",
    message: `Invalid value: ${JSON.stringify(value)}: ${detail}`,
    field,
  };
}

function checkName(causes: StatusCause[], name: string | undefined, max = 253): void {
  if (!name) return void causes.push(required("metadata.name"));
  if (!DNS1123_SUBDOMAIN.test(name) || name.length > max) {
    causes.push(
      bad(
        "metadata.name",
        name,
        max === 63
          ? "must be no more than 63 characters and a lowercase RFC 1123 label"
          : "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, " +
            "'-' or '.', and must start and end with an alphanumeric character",
      ),
    );
  }
}

// deno-lint-ignore no-explicit-any
function checkContainers(causes: StatusCause[], spec: any, volumes: Set<string>): void {
  const base = "spec.template.spec.containers";
  if (!spec.containers?.length) return void causes.push(required(base));
  const names = new Set<string>();
  // deno-lint-ignore no-explicit-any
  spec.containers.forEach((c: any, i: number) => {
    const f = `${base}[${i}]`;
    if (!c.name) causes.push(required(`${f}.name`));
    else if (!DNS1123_LABEL.test(c.name)) {
      causes.push(bad(`${f}.name`, c.name, "a lowercase RFC 1123 label"));
    } else if (names.has(c.name)) {
      causes.push({
        reason: "FieldValueDuplicate",
        message: `Duplicate value: "${c.name}"`,
        field: `${f}.name`,
      });
    }
    names.add(c.name);
    if (!c.image) causes.push(required(`${f}.image`));
    // deno-lint-ignore no-explicit-any
    (c.volumeMounts ?? []).forEach((m: any, j: number) => {
      if (!volumes.has(m.name)) {
        causes.push({
          reason: "FieldValueNotFound",
          message: `Not found: "${m.name}"`,
          field: `${f}.volumeMounts[${j}].name`,
        });
      }
    });
    // deno-lint-ignore no-explicit-any
    (c.env ?? []).forEach((e: any, j: number) => {
      if (e.valueFrom?.secretKeyRef && !e.valueFrom.secretKeyRef.name) {
        causes.push(required(`${f}.env[${j}].valueFrom.secretKeyRef.name`));
      }
    });
  });
}

/** Throws 422 Invalid when the Job (after defaulting) is not valid. */
export function validateJob(job: KObject): void {
  const causes: StatusCause[] = [];
  checkName(causes, job.metadata.name, 63);
  const spec = job.spec.template.spec;
  const volumes = new Set<string>();
  // deno-lint-ignore no-explicit-any
  (spec.volumes ?? []).forEach((v: any, i: number) => {
    const f = `spec.template.spec.volumes[${i}]`;
    if (volumes.has(v.name)) {
      causes.push({
        reason: "FieldValueDuplicate",
        message: `Duplicate value: "${v.name}"`,
        field: `${f}.name`,
      });
    }
    volumes.add(v.name);
    if (!v.secret && !v.emptyDir) causes.push(required(`${f}`));
    if (v.secret && !v.secret.secretName) causes.push(required(`${f}.secret.secretName`));
  });
  checkContainers(causes, spec, volumes);
  if (!["OnFailure", "Never"].includes(spec.restartPolicy)) {
    causes.push({
      reason: "FieldValueNotSupported",
      message: `Unsupported value: "${spec.restartPolicy}": supported values: "OnFailure", "Never"`,
      field: "spec.template.spec.restartPolicy",
    });
  }
  for (const f of ["backoffLimit", "activeDeadlineSeconds", "ttlSecondsAfterFinished"] as const) {
    const v = job.spec[f];
    if (v !== undefined && v < 0) {
      causes.push(bad(`spec.${f}`, v, "must be greater than or equal to 0"));
    }
  }
  if (job.spec.completions !== undefined && job.spec.completions !== 1) {
    causes.push(
      bad("spec.completions", job.spec.completions, "the fake API server supports only 1"),
    );
  }
  if (causes.length) throw invalid("Job", "batch", job.metadata.name ?? "", causes);
}

/** Fills in the defaults kube-apiserver sets on a Job and its pod template. */
export function defaultJob(job: KObject, uid: string): void {
  const s = job.spec;
  s.backoffLimit ??= 6;
  s.completions ??= 1;
  s.parallelism ??= 1;
  s.completionMode ??= "NonIndexed";
  s.suspend ??= false;
  s.podReplacementPolicy ??= "TerminatingOrFailed";
  s.manualSelector ??= undefined;
  const ownLabels = {
    "batch.kubernetes.io/controller-uid": uid,
    "batch.kubernetes.io/job-name": job.metadata.name,
    "controller-uid": uid,
    "job-name": job.metadata.name,
  };
  s.selector ??= { matchLabels: { "batch.kubernetes.io/controller-uid": uid } };
  s.template.metadata = { ...s.template.metadata };
  s.template.metadata.labels = { ...s.template.metadata.labels, ...ownLabels };
  const ps = s.template.spec;
  ps.restartPolicy ??= "Always";
  ps.terminationGracePeriodSeconds ??= 30;
  ps.dnsPolicy ??= "ClusterFirst";
  ps.schedulerName ??= "default-scheduler";
  ps.securityContext ??= {};
  for (const c of ps.containers ?? []) {
    c.terminationMessagePath ??= "/dev/termination-log";
    c.terminationMessagePolicy ??= "File";
    c.imagePullPolicy ??= !c.image || /:latest$|^[^:@]*$/.test(c.image.split("/").pop() ?? "")
      ? "Always"
      : "IfNotPresent";
    c.resources ??= {};
  }
  for (const v of ps.volumes ?? []) if (v.secret) v.secret.defaultMode ??= 0o644;
}

/** Throws 422 Invalid for a bad Secret (name, dockerconfigjson needs `.dockerconfigjson`). */
export function validateSecret(secret: KObject): void {
  const causes: StatusCause[] = [];
  checkName(causes, secret.metadata.name);
  const data = secret.data ?? {};
  if (secret.type === "kubernetes.io/dockerconfigjson") {
    if (!(".dockerconfigjson" in data)) causes.push(required("data[.dockerconfigjson]"));
    else {
      try {
        JSON.parse(atob(data[".dockerconfigjson"]));
      } catch (e) {
        causes.push(bad("data[.dockerconfigjson]", "<secret contents redacted>", String(e)));
      }
    }
  }
  for (const k of Object.keys(data)) {
    if (!/^[-._a-zA-Z0-9]+$/.test(k)) causes.push(bad(`data[${k}]`, k, "a valid config key"));
  }
  if (causes.length) throw invalid("Secret", "", secret.metadata.name ?? "", causes);
}
