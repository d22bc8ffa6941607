/**
 * A tiny Kubernetes API stub for the k8s driver's own tests (the full fake cluster lives in
 * tests/_fake_k8s/): Jobs and Pods in one namespace with resourceVersions, list + watch with
 * the real protocol (events after `resourceVersion`, bookmarks, `410 Gone` for compacted
 * versions), label selectors, pod logs and deletes, and hooks to drop watch streams.
 * @module
 */

import type { PlatformTarget } from "../../../drivers/types.ts";

/** A stored object. */
export type Obj = { metadata: Record<string, any>; [k: string]: any };

interface Event {
  rv: number;
  kind: "jobs" | "pods";
  type: "ADDED" | "MODIFIED" | "DELETED";
  object: Obj;
}

/** Options of {@link startStub}. */
export interface StubOptions {
  /** Called after a Job is created (drive its lifecycle from here). */
  onJobCreated?: (job: Obj, stub: Stub) => void;
  /** Nodes served by GET /api/v1/nodes (default none); `forbidNodes` answers 403. */
  nodes?: Obj[];
  forbidNodes?: boolean;
  /** Bearer token required on every request, when set. */
  token?: string;
}

/** A running stub. */
export interface Stub extends AsyncDisposable {
  url: string;
  jobs: Map<string, Obj>;
  pods: Map<string, Obj>;
  deleted: string[];
  created: Obj[];
  /** Every request as `METHOD path?query`. */
  requests: string[];
  logs: Map<string, string>;
  /** Creates or updates an object, emitting its event. */
  put(kind: "jobs" | "pods", object: Obj): void;
  /** Forgets events up to the current version (watches from older versions get 410). */
  compact(): void;
  /** Ends every open watch stream: cleanly, or with an error (a connection reset). */
  dropWatches(how?: "close" | "error"): void;
}

const NS = "builds";

function matches(object: Obj, selector: string | null): boolean {
  if (!selector) return true;
  const labels = object.metadata.labels ?? {};
  return selector.split(",").every((term) => {
    const [k, v] = term.split("=");
    return labels[k] === v;
  });
}

/** Starts the stub on a free port. */
export function startStub(options: StubOptions = {}): Stub {
  let rv = 100;
  let oldest = 0;
  const events: Event[] = [];
  const listeners = new Set<(e: Event) => void>();
  const streams = new Map<ReadableStreamDefaultController<Uint8Array>, (e: Event) => void>();
  const enc = new TextEncoder();
  const stub = {
    jobs: new Map<string, Obj>(),
    pods: new Map<string, Obj>(),
    deleted: [] as string[],
    created: [] as Obj[],
    requests: [] as string[],
    logs: new Map<string, string>(),
    put(kind: "jobs" | "pods", object: Obj) {
      const store = stub[kind];
      const type = store.has(object.metadata.name) ? "MODIFIED" : "ADDED";
      object.metadata.resourceVersion = String(++rv);
      object.metadata.namespace = NS;
      store.set(object.metadata.name, object);
      emit({ rv, kind, type, object: structuredClone(object) });
    },
    compact() {
      oldest = rv;
      events.length = 0;
    },
    dropWatches(how: "close" | "error" = "close") {
      for (const [c, l] of streams) {
        listeners.delete(l);
        try {
          if (how === "error") c.error(new Error("connection reset"));
          else c.close();
        } catch {
          // the client went away already
        }
      }
      streams.clear();
    },
  };
  function emit(e: Event) {
    events.push(e);
    for (const l of listeners) l(e);
  }
  const json = (body: unknown, status = 200) =>
    new Response(JSON.stringify(body), {
      status,
      headers: { "content-type": "application/json" },
    });
  const status = (code: number, reason: string, message: string) =>
    json({ kind: "Status", apiVersion: "v1", status: "Failure", message, reason, code }, code);

  function watch(kind: "jobs" | "pods", url: URL): Response {
    const from = Number(url.searchParams.get("resourceVersion") ?? "0");
    const selector = url.searchParams.get("labelSelector");
    let listener: ((e: Event) => void) | undefined;
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        const send = (e: Event) => {
          if (e.kind === kind && e.rv > from && matches(e.object, selector)) {
            try {
              c.enqueue(enc.encode(JSON.stringify({ type: e.type, object: e.object }) + "\n"));
            } catch {
              listeners.delete(send);
            }
          }
        };
        if (from < oldest) {
          const gone = { kind: "Status", code: 410, reason: "Expired", message: "too old" };
          c.enqueue(enc.encode(JSON.stringify({ type: "ERROR", object: gone }) + "\n"));
          c.close();
          return;
        }
        for (const e of events) send(e);
        const bookmark = { metadata: { resourceVersion: String(rv) } };
        c.enqueue(enc.encode(JSON.stringify({ type: "BOOKMARK", object: bookmark }) + "\n"));
        listener = send;
        listeners.add(send);
        streams.set(c, send);
      },
      cancel() {
        if (listener) listeners.delete(listener);
      },
    });
    return new Response(body, { headers: { "content-type": "application/json" } });
  }

  function collection(kind: "jobs" | "pods", req: Request, url: URL): Response {
    if (url.searchParams.get("watch") === "1") return watch(kind, url);
    if (req.method === "GET") {
      const selector = url.searchParams.get("labelSelector");
      const items = [...stub[kind].values()].filter((o) => matches(o, selector));
      return json({ kind: "List", metadata: { resourceVersion: String(rv) }, items });
    }
    return status(405, "MethodNotAllowed", "no");
  }

  async function handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    stub.requests.push(`${req.method} ${url.pathname}${url.search}`);
    if (options.token && req.headers.get("authorization") !== `Bearer ${options.token}`) {
      return status(401, "Unauthorized", "Unauthorized");
    }
    const path = url.pathname;
    if (path === "/api/v1/nodes") {
      if (options.forbidNodes) {
        return status(
          403,
          "Forbidden",
          'nodes is forbidden: User "x" cannot list resource "nodes"',
        );
      }
      return json({
        kind: "NodeList",
        metadata: { resourceVersion: "1" },
        items: options.nodes ?? [],
      });
    }
    const jobs = `/apis/batch/v1/namespaces/${NS}/jobs`;
    const pods = `/api/v1/namespaces/${NS}/pods`;
    if (path === jobs && req.method === "POST") {
      const job = await req.json() as Obj;
      if (stub.jobs.has(job.metadata.name)) return status(409, "AlreadyExists", "exists");
      stub.created.push(structuredClone(job));
      stub.put("jobs", job);
      setTimeout(() => options.onJobCreated?.(job, stub as Stub), 5);
      return json(job, 201);
    }
    if (path === jobs) return collection("jobs", req, url);
    if (path === pods) return collection("pods", req, url);
    if (path.startsWith(`${jobs}/`) && req.method === "DELETE") {
      const name = path.slice(jobs.length + 1);
      if (!stub.jobs.has(name)) return status(404, "NotFound", `jobs.batch "${name}" not found`);
      stub.deleted.push(`${name}?${url.searchParams.get("propagationPolicy")}`);
      const job = stub.jobs.get(name)!;
      stub.jobs.delete(name);
      emit({ rv: ++rv, kind: "jobs", type: "DELETED", object: job });
      return json({ kind: "Status", status: "Success" });
    }
    const log = /^\/api\/v1\/namespaces\/builds\/pods\/([^/]+)\/log$/.exec(path);
    if (log) return new Response(stub.logs.get(log[1]) ?? "", { status: 200 });
    return status(404, "NotFound", `${path} not found`);
  }

  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, handle);
  const { port } = server.addr as Deno.NetAddr;
  return Object.assign(stub, {
    url: `http://127.0.0.1:${port}`,
    async [Symbol.asyncDispose]() {
      stub.dropWatches();
      listeners.clear();
      await server.shutdown();
    },
  });
}

/** A pod of a Job, terminated with `exitCode` and `message`. */
export function terminatedPod(job: Obj, exitCode: number, message: string): Obj {
  return {
    metadata: {
      name: `${job.metadata.name}-abcde`,
      labels: { ...job.spec.template.metadata.labels },
    },
    spec: { nodeName: "node-1" },
    status: {
      phase: exitCode === 0 ? "Succeeded" : "Failed",
      containerStatuses: [{
        name: "executor",
        state: {
          terminated: { exitCode, reason: exitCode === 0 ? "Completed" : "Error", message },
        },
      }],
    },
  };
}

/** A Job with a final condition. */
export function finishedJob(job: Obj, type: "Complete" | "Failed", reason?: string): Obj {
  return {
    ...structuredClone(job),
    status: { conditions: [{ type, status: "True", reason: reason ?? null }] },
  };
}

/** A platform target as the coordinator makes it (no plan: the driver does not read it). */
export function target(platform: string): PlatformTarget {
  const [os, architecture, variant] = platform.split("/");
  return {
    platform,
    parsed: variant ? { os, architecture, variant } : { os, architecture },
    slug: platform.replaceAll("/", "-"),
    native: false,
    plan: {} as PlatformTarget["plan"],
    hasRun: true,
  };
}
