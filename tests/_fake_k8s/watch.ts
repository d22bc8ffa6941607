/**
 * Watches: `?watch=1&resourceVersion=RV&allowWatchBookmarks=true&timeoutSeconds=N` streams
 * newline-delimited `{"type":…,"object":…}` events of the changes after RV (without RV, or
 * with `0`: synthetic ADDED events for the current objects first, as kube-apiserver does); a
 * resourceVersion older than the retained window gives one ERROR event carrying a 410 `Expired`
 * Status and ends the stream (HTTP 200, as the real server does for watches). BOOKMARK events
 * carry only `metadata.resourceVersion`. {@link WatchHub.cut} ends every open watch, cleanly or
 * by breaking the connection, so clients' resume logic can be tested.
 * @module
 */
import { parseFieldSelector, parseLabelSelector } from "./labels.ts";
import { ApiError } from "./status.ts";
import { type Change, type KObject, RESOURCES, type Store, type WatchEvent } from "./store.ts";

/** How {@link WatchHub.cut} ends watches: a clean end of stream, or a broken connection. */
export type CutMode = "close" | "error";

/** What happened on one watch request (for tests). */
export interface WatchRecord {
  resource: string;
  /** The `resourceVersion` asked for. */
  from?: string;
  /** The resourceVersion of the last event (or bookmark) sent. */
  lastRv?: string;
  /** When the last event was sent (ms since the epoch): a cut right after an event may drop it
   * before the client reads it. */
  lastSentAt?: number;
  events: number;
  /** How it ended (undefined while open). */
  end?: "cut-error" | "cut-close" | "timeout" | "client" | "expired";
}

/** The open watches of a server. */
export class WatchHub {
  #open = new Set<(mode: CutMode) => void>();
  /** Events sent so far on all watches (for tests). */
  sent = 0;
  /** Every watch request, in order. */
  readonly history: WatchRecord[] = [];

  /** How many watches are open. */
  get open(): number {
    return this.#open.size;
  }

  /** Ends every open watch. */
  cut(mode: CutMode = "error"): void {
    for (const end of [...this.#open]) end(mode);
  }

  /** @internal */
  register(end: (mode: CutMode) => void): () => void {
    this.#open.add(end);
    return () => this.#open.delete(end);
  }
}

/** Parameters of one watch request. */
export interface WatchParams {
  resource: string;
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  resourceVersion?: string;
  allowWatchBookmarks: boolean;
  timeoutSeconds?: number;
  signal: AbortSignal;
  /** Interval between bookmarks, ms. */
  bookmarkMs: number;
}

/** Strips what list items and watch objects do not carry, and adds kind/apiVersion. */
function wire(resource: string, o: KObject): KObject {
  const info = RESOURCES[resource];
  return { ...o, kind: info.kind, apiVersion: info.apiVersion };
}

type Send = (ev: WatchEvent) => void;

/**
 * Sends what precedes live events: the current objects (no resourceVersion, or `0`) or the
 * retained changes after the resourceVersion. Returns the last resourceVersion covered; throws
 * an ApiError (410 when too old).
 */
function replay(store: Store, p: WatchParams, matches: (o: KObject) => boolean, send: Send) {
  const rv = p.resourceVersion;
  if (rv === undefined || rv === "" || rv === "0") {
    const last = store.resourceVersion;
    for (const o of store.list(p.resource, p.namespace, matches)) {
      send({ type: "ADDED", object: wire(p.resource, o) });
    }
    return last;
  }
  if (!/^\d+$/.test(rv)) throw new ApiError(400, "BadRequest", `invalid resource version: ${rv}`);
  let last = Number(rv);
  for (const c of store.since(p.resource, last)) {
    if (matches(c.object)) send({ type: c.type, object: wire(p.resource, c.object) });
    last = Math.max(last, c.rv);
  }
  return last;
}

function bookmarks(store: Store, p: WatchParams, send: Send): () => void {
  const info = RESOURCES[p.resource];
  const t = setInterval(() =>
    send({
      type: "BOOKMARK",
      object: {
        kind: info.kind,
        apiVersion: info.apiVersion,
        metadata: { resourceVersion: String(store.resourceVersion) },
      },
    }), p.bookmarkMs);
  return () => clearInterval(t);
}

/** The streaming response of a watch (selectors are validated before anything is sent). */
export function watchResponse(store: Store, hub: WatchHub, p: WatchParams): Response {
  const labels = parseLabelSelector(p.labelSelector);
  const fields = parseFieldSelector(p.fieldSelector);
  const matches = (o: KObject) =>
    (p.namespace === undefined || o.metadata.namespace === p.namespace) &&
    labels(o.metadata.labels ?? {}) && fields(o);
  const enc = new TextEncoder();
  const cleanups: (() => void)[] = [];
  let closed = false;
  const record: WatchRecord = { resource: p.resource, from: p.resourceVersion, events: 0 };
  hub.history.push(record);
  const stream = new ReadableStream<Uint8Array>({
    start(ctl) {
      const send: Send = (ev) => {
        if (closed) return;
        hub.sent++;
        record.events++;
        const rv = (ev.object as KObject).metadata?.resourceVersion;
        if (rv) record.lastRv = rv;
        record.lastSentAt = Date.now();
        ctl.enqueue(enc.encode(JSON.stringify(ev) + "\n"));
      };
      const end = (mode: CutMode, why?: WatchRecord["end"]) => {
        if (closed) return;
        closed = true;
        record.end = why ?? (mode === "error" ? "cut-error" : "cut-close");
        for (const c of cleanups) c();
        if (mode === "error") {
          ctl.error(new Error("fake-k8s: watch connection cut on purpose (cutWatches)"));
        } else ctl.close();
      };
      // changes that happen while replaying are buffered, then sent unless already covered
      const buffered: Change[] = [];
      let last = -1;
      const live = (c: Change) => {
        if (c.resource !== p.resource) return;
        if (last < 0) return void buffered.push(c);
        if (c.rv > last && matches(c.object)) {
          send({ type: c.type, object: wire(p.resource, c.object) });
        }
        last = Math.max(last, c.rv);
      };
      cleanups.push(store.subscribe(live), hub.register(end));
      try {
        last = replay(store, p, matches, send);
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        send({ type: "ERROR", object: e.status as unknown as Record<string, unknown> });
        return end("close", "expired");
      }
      for (const c of buffered) live(c);
      if (p.allowWatchBookmarks) cleanups.push(bookmarks(store, p, send));
      const t = setTimeout(() => end("close", "timeout"), (p.timeoutSeconds ?? 1800) * 1000);
      cleanups.push(() => clearTimeout(t));
      p.signal.addEventListener("abort", () => end("close", "client"), { once: true });
    },
    cancel() {
      record.end ??= "client";
      closed = true;
      for (const c of cleanups) c();
    },
  });
  return new Response(stream, {
    headers: { "content-type": "application/json", "cache-control": "no-cache, private" },
  });
}
