/**
 * Helpers of the fake Kubernetes API server's tests: Job bodies, waiting for a condition,
 * reading watch streams, and a tiny "executor" script that stands for our CLI.
 * @module
 */
import type { FakeK8s, KObject } from "../_fake_k8s/mod.ts";

/**
 * An executor argv for unit tests: a shell script that prints its args and `$MSG_ENV`, writes
 * `${DIGEST:-sha256:feed}` to the `--digest-file=` path, sleeps `$SLEEP` seconds and exits
 * `$EXIT` (default 0). It also cats `$CAT` when set.
 */
export const SCRIPT_EXECUTOR = [
  "sh",
  "-c",
  [
    'echo "args: $*"',
    'echo "env: ${MSG_ENV:-}"',
    'if [ -n "${CAT:-}" ]; then cat "$CAT"; echo; fi',
    'for a; do case "$a" in --digest-file=*) printf "%s" "${DIGEST:-sha256:feed}" > "${a#--digest-file=}";; esac; done',
    'echo "pid $$" > /dev/null',
    'if [ -n "${PIDFILE:-}" ]; then echo $$ > "$PIDFILE"; fi',
    'if [ -n "${SLEEP:-}" ]; then sleep "$SLEEP"; fi',
    'exit "${EXIT:-0}"',
  ].join("\n"),
  "executor",
];

/** Options of {@link jobBody}. */
export interface JobBodyOptions {
  args?: string[];
  env?: Record<string, string>;
  // deno-lint-ignore no-explicit-any
  extraEnv?: any[];
  nodeSelector?: Record<string, string>;
  backoffLimit?: number;
  activeDeadlineSeconds?: number;
  restartPolicy?: string;
  terminationMessagePolicy?: string;
  // deno-lint-ignore no-explicit-any
  volumes?: any[];
  // deno-lint-ignore no-explicit-any
  volumeMounts?: any[];
}

/** A batch/v1 Job as the k8s driver would post it. */
export function jobBody(name: string, o: JobBodyOptions = {}): KObject {
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name, labels: { "app.kubernetes.io/name": "kaniko" } },
    spec: {
      backoffLimit: o.backoffLimit ?? 0,
      ...(o.activeDeadlineSeconds !== undefined
        ? { activeDeadlineSeconds: o.activeDeadlineSeconds }
        : {}),
      template: {
        metadata: { labels: { "app.kubernetes.io/name": "kaniko" } },
        spec: {
          restartPolicy: o.restartPolicy ?? "Never",
          nodeSelector: o.nodeSelector ??
            { "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64" },
          containers: [{
            name: "kaniko",
            image: "ghcr.io/example/kaniko-deno:latest",
            command: ["/kaniko/executor"],
            args: o.args ?? ["--digest-file=/dev/termination-log"],
            env: [
              ...Object.entries(o.env ?? {}).map(([name, value]) => ({ name, value })),
              ...(o.extraEnv ?? []),
            ],
            volumeMounts: o.volumeMounts ?? [],
            ...(o.terminationMessagePolicy
              ? { terminationMessagePolicy: o.terminationMessagePolicy }
              : {}),
          }],
          volumes: o.volumes ?? [],
        },
      },
    },
  };
}

/** Polls `fn` until it returns a truthy value (or throws after `ms`). */
export async function waitFor<T>(
  what: string,
  fn: () => T | Promise<T>,
  ms = 15000,
): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** POSTs a Job; returns the response. */
export function postJob(
  k8s: FakeK8s,
  ns: string,
  body: KObject,
  token?: string,
): Promise<Response> {
  return k8s.fetch(`/apis/batch/v1/namespaces/${ns}/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    token,
  });
}

/** GETs JSON (admin token unless given). */
export async function getJson(k8s: FakeK8s, path: string, token?: string) {
  const r = await k8s.fetch(path, { token });
  return { status: r.status, body: await r.json() };
}

/** A Job's condition of a type, when True. */
export function condition(job: KObject, type: string) {
  // deno-lint-ignore no-explicit-any
  return (job.status?.conditions ?? []).find((c: any) => c.type === type && c.status === "True");
}

/** Reads newline-delimited watch events until `stop` says so or the stream ends. */
export async function readEvents(
  resp: Response,
  // deno-lint-ignore no-explicit-any
  stop: (events: any[]) => boolean = () => false,
  // deno-lint-ignore no-explicit-any
): Promise<{ events: any[]; ended: "eof" | "error" | "stopped" }> {
  // deno-lint-ignore no-explicit-any
  const events: any[] = [];
  const reader = resp.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { events, ended: "eof" };
      buf += value;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        events.push(JSON.parse(buf.slice(0, i)));
        buf = buf.slice(i + 1);
        if (stop(events)) {
          await reader.cancel();
          return { events, ended: "stopped" };
        }
      }
    }
  } catch {
    return { events, ended: "error" };
  }
}
