/**
 * Resumable watches, as client-go's reflector does them: list (which gives a resourceVersion),
 * then `?watch=1&resourceVersion=RV&allowWatchBookmarks=true`, following the resourceVersion of
 * every event and bookmark; a stream that ends or drops is resumed from the last resourceVersion,
 * and a `410 Gone` (an `ERROR` event or the HTTP status) starts over with a fresh list.
 * @module
 */
import type { z } from "zod";
import { KanikoError } from "../../lib/errors.ts";
import { log } from "../../lib/log.ts";
import type { KubeClient } from "./client.ts";
import { KubeApiError, StatusSchema } from "./errors.ts";
import { listSchema, WatchEventSchema } from "./resources.ts";

/** What {@link watchResources} reports: a listed object is `ADDED`. */
export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED";

/** Options of {@link watchResources}. */
export interface WatchOptions<T extends z.ZodType> {
  client: KubeClient;
  /** Collection path, e.g. `/apis/batch/v1/namespaces/NS/jobs`. */
  path: string;
  /** Resource name for messages and RBAC hints (`jobs.batch`, `pods`). */
  resource: string;
  labelSelector: string;
  schema: T;
  /** Called for each object listed or changed. */
  onEvent(type: WatchEventType, object: z.infer<T>): void;
  /** Stops the watch (the promise then resolves). */
  signal: AbortSignal;
  /** Delay before the second resume in a row after errors, doubling after (ms; default 1000). */
  retryDelay?: number;
  /** Consecutive failures tolerated before giving up (default 5). */
  maxFailures?: number;
  /** `timeoutSeconds` asked of the server per watch request (default 300). */
  timeoutSeconds?: number;
}

class Gone extends Error {}

/** Watches a collection until `signal` aborts; throws when it cannot keep watching. */
export async function watchResources<T extends z.ZodType>(options: WatchOptions<T>): Promise<void> {
  const { signal } = options;
  let failures = 0;
  // The last resourceVersion seen, kept across a stream that breaks in the middle.
  const state: { rv?: string } = {};
  while (!signal.aborted) {
    try {
      if (state.rv === undefined) state.rv = await listOnce(options);
      await watchOnce(options, state, () => (failures = 0));
    } catch (e) {
      if (signal.aborted) return;
      if (e instanceof Gone || (e instanceof KubeApiError && e.status === 410)) {
        log.debug("watch expired (410 Gone); listing again", { resource: options.resource });
        state.rv = undefined;
        continue;
      }
      if (e instanceof KubeApiError && [401, 403, 404].includes(e.status)) throw e;
      if (++failures > (options.maxFailures ?? 5)) throw e;
      log.debug("watch interrupted; resuming", { resource: options.resource, error: e });
      // A dropped connection is resumed at once; repeated failures back off (as client-go).
      if (failures > 1) {
        await sleep(Math.min(30_000, (options.retryDelay ?? 1000) * 2 ** (failures - 2)), signal);
      }
    }
  }
}

async function listOnce<T extends z.ZodType>(options: WatchOptions<T>): Promise<string> {
  const { client, path, resource, labelSelector, signal } = options;
  const list = await client.json(
    path,
    { verb: "list", resource, namespace: client.namespace },
    listSchema(options.schema),
    { query: { labelSelector }, signal },
  );
  for (const item of list.items ?? []) options.onEvent("ADDED", item);
  return list.metadata.resourceVersion ?? "0";
}

/** One watch request from `state.rv`, which follows every event and bookmark. */
async function watchOnce<T extends z.ZodType>(
  options: WatchOptions<T>,
  state: { rv?: string },
  progress: () => void,
): Promise<void> {
  const { client, path, resource, labelSelector, signal } = options;
  const res = await client.request(path, {
    verb: "watch",
    resource,
    namespace: client.namespace,
  }, {
    query: {
      watch: "1",
      resourceVersion: state.rv,
      allowWatchBookmarks: "true",
      labelSelector,
      timeoutSeconds: String(options.timeoutSeconds ?? 300),
    },
    signal,
  });
  for await (const line of lines(res.body, signal)) {
    const event = parseEvent(line, resource);
    const meta = event.object.metadata as { resourceVersion?: unknown } | undefined;
    const next = typeof meta?.resourceVersion === "string" ? meta.resourceVersion : undefined;
    if (event.type === "ERROR") {
      const status = StatusSchema.safeParse(event.object);
      if (status.success && status.data.code === 410) throw new Gone();
      const message = status.success ? status.data.message : "unknown";
      throw new KanikoError(`watching ${resource}: the server sent an error: ${message}`);
    }
    if (next) state.rv = next;
    progress();
    if (event.type === "BOOKMARK") continue;
    const parsed = options.schema.safeParse(event.object);
    if (!parsed.success) {
      throw new KanikoError(`watching ${resource}: an event holds an unexpected object`);
    }
    options.onEvent(event.type, parsed.data);
  }
}

function parseEvent(line: string, resource: string) {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    throw new KanikoError(`watching ${resource}: a line of the stream is not JSON`);
  }
  const parsed = WatchEventSchema.safeParse(raw);
  if (!parsed.success) throw new KanikoError(`watching ${resource}: not a watch event`);
  return parsed.data;
}

/** The complete, non-empty lines of a stream (each watch event ends with a newline). */
export async function* lines(
  body: ReadableStream<Uint8Array> | null,
  signal?: AbortSignal,
): AsyncGenerator<string> {
  if (!body) return;
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  const onAbort = () => reader.cancel().catch(() => {});
  signal?.addEventListener("abort", onAbort, { once: true });
  let buffer = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += value;
      let nl;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl).trim();
        buffer = buffer.slice(nl + 1);
        if (line) yield line;
      }
    }
    // A trailing partial line is what a dropped stream leaves: the resumed watch sends it again.
  } finally {
    signal?.removeEventListener("abort", onAbort);
    reader.cancel().catch(() => {});
  }
}

/** Waits `ms`, or less when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
