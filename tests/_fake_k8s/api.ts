/**
 * The HTTP surface of the fake API server (hono): discovery (`/version`, `/api`, `/apis`,
 * `/api/v1`, `/apis/batch/v1`), nodes (list/get/watch), pods (list/get/watch/create/delete,
 * `log` with `tailLines`, `limitBytes`, `follow`), secrets (create/get/list/delete) and
 * batch/v1 jobs (create/list/get/watch/delete with `propagationPolicy`). Every request is
 * authenticated and authorized first ({@link authenticate}, {@link authorize}); every error is a
 * Status object. List responses carry `metadata.resourceVersion`; their items have no
 * kind/apiVersion, as in kube-apiserver's JSON.
 * @module
 */
import { type Context, Hono } from "hono";
import type { z } from "zod";
import {
  type Attributes,
  type AuthConfig,
  authenticate,
  authorize,
  type ClientCert,
  type UserInfo,
} from "./auth.ts";
import { type Cluster, success } from "./cluster.ts";
import { parseFieldSelector, parseLabelSelector } from "./labels.ts";
import { podLogResponse } from "./logs.ts";
import { randomSuffix } from "./pod_status.ts";
import { decodeError, deleteOptionsSchema, jobSchema, secretSchema } from "./schemas.ts";
import { ApiError, badRequest } from "./status.ts";
import { type KObject, RESOURCES } from "./store.ts";
import { type WatchHub, watchResponse } from "./watch.ts";

/** Bindings the server passes to `app.fetch` (the verified client certificate, if any). */
export interface Bindings {
  clientCert?: ClientCert;
}

/** What the routes need. */
export interface ApiDeps {
  cluster: Cluster;
  auth: AuthConfig;
  hub: WatchHub;
  /** Bookmark interval for watches, ms. */
  bookmarkMs: number;
  /** Every request as `METHOD PATH?QUERY user` (for tests). */
  requests: string[];
}

type Env = { Bindings: Bindings; Variables: { user: UserInfo } };
type C = Context<Env>;

const VERSION = {
  major: "1",
  minor: "31",
  gitVersion: "v1.31.0-fake",
  gitCommit: "0000000000000000000000000000000000000000",
  gitTreeState: "clean",
  buildDate: "2026-01-01T00:00:00Z",
  goVersion: "go1.22.0",
  compiler: "gc",
  platform: "linux/amd64",
};

function resourceList(groupVersion: string, names: string[]) {
  return {
    kind: "APIResourceList",
    apiVersion: "v1",
    groupVersion,
    resources: names.map((n) => {
      const [r, sub] = n.split("/");
      const info = RESOURCES[r];
      return {
        name: n,
        singularName: sub ? "" : info.kind.toLowerCase(),
        namespaced: info.namespaced,
        kind: sub ? info.kind : info.kind,
        verbs: sub ? ["get"] : ["create", "delete", "get", "list", "watch"],
      };
    }),
  };
}

async function body<T extends z.ZodType>(c: C, schema: T, kind: string): Promise<z.infer<T>> {
  let json: unknown;
  try {
    json = await c.req.json();
  } catch (e) {
    throw badRequest(`${kind} in version "v1" cannot be handled as a ${kind}: ${e}`);
  }
  const r = schema.safeParse(json);
  if (!r.success) throw badRequest(decodeError(kind, r.error));
  return r.data;
}

/** Helpers the route groups share. */
interface Handlers {
  deps: ApiDeps;
  check(c: C, a: Attributes): void;
  listOrWatch(c: C, resource: string, ns?: string): Response;
  getOne(c: C, resource: string, ns: string | undefined, name: string): Response;
  deleteOptions(c: C): Promise<z.infer<typeof deleteOptionsSchema>>;
}

function handlers(deps: ApiDeps): Handlers {
  const { auth, hub } = deps;
  const store = deps.cluster.store;
  const check = (c: C, a: Attributes) => authorize(auth, c.get("user"), a);
  return {
    deps,
    check,
    listOrWatch(c, resource, ns) {
      const info = RESOURCES[resource];
      const q = c.req.query();
      const watch = q.watch === "1" || q.watch === "true";
      check(c, { verb: watch ? "watch" : "list", group: info.group, resource, namespace: ns });
      if (watch) {
        return watchResponse(store, hub, {
          resource,
          namespace: ns,
          labelSelector: q.labelSelector,
          fieldSelector: q.fieldSelector,
          resourceVersion: q.resourceVersion,
          allowWatchBookmarks: q.allowWatchBookmarks === "true" || q.allowWatchBookmarks === "1",
          timeoutSeconds: q.timeoutSeconds ? Number(q.timeoutSeconds) : undefined,
          signal: c.req.raw.signal,
          bookmarkMs: deps.bookmarkMs,
        });
      }
      const labels = parseLabelSelector(q.labelSelector);
      const fields = parseFieldSelector(q.fieldSelector);
      const rv = String(store.resourceVersion);
      const items = store.list(resource, ns, (o) => labels(o.metadata.labels ?? {}) && fields(o))
        .map(({ kind: _k, apiVersion: _a, ...rest }) => rest);
      return c.json({
        kind: `${info.kind}List`,
        apiVersion: info.apiVersion,
        metadata: { resourceVersion: rv },
        items,
      });
    },
    getOne(c, resource, ns, name) {
      const info = RESOURCES[resource];
      check(c, { verb: "get", group: info.group, resource, namespace: ns, name });
      return c.json(store.get(resource, ns, name));
    },
    async deleteOptions(c) {
      const text = await c.req.text();
      let raw: Record<string, unknown>;
      try {
        raw = text ? JSON.parse(text) : {};
      } catch (e) {
        throw badRequest(`DeleteOptions cannot be decoded: ${e}`);
      }
      const q = c.req.query();
      if (q.propagationPolicy) raw.propagationPolicy = q.propagationPolicy;
      if (q.gracePeriodSeconds) raw.gracePeriodSeconds = Number(q.gracePeriodSeconds);
      const r = deleteOptionsSchema.safeParse(raw);
      if (!r.success) throw badRequest(decodeError("DeleteOptions", r.error));
      return r.data;
    },
  };
}

function discoveryRoutes(app: Hono<Env>): void {
  app.get("/api", (c) =>
    c.json({
      kind: "APIVersions",
      versions: ["v1"],
      serverAddressByClientCIDRs: [{
        clientCIDR: "0.0.0.0/0",
        serverAddress: new URL(c.req.url).host,
      }],
    }));
  app.get("/apis", (c) =>
    c.json({
      kind: "APIGroupList",
      apiVersion: "v1",
      groups: [{
        name: "batch",
        versions: [{ groupVersion: "batch/v1", version: "v1" }],
        preferredVersion: { groupVersion: "batch/v1", version: "v1" },
      }],
    }));
  app.get("/api/v1", (c) => c.json(resourceList("v1", ["nodes", "pods", "pods/log", "secrets"])));
  app.get("/apis/batch/v1", (c) => c.json(resourceList("batch/v1", ["jobs"])));
}

const CORE = "/api/v1/namespaces/:ns";

function podRoutes(app: Hono<Env>, h: Handlers): void {
  const { cluster } = h.deps;
  app.get("/api/v1/nodes", (c) => h.listOrWatch(c, "nodes"));
  app.get("/api/v1/nodes/:name", (c) => h.getOne(c, "nodes", undefined, c.req.param("name")));
  app.get(`${CORE}/pods`, (c) => h.listOrWatch(c, "pods", c.req.param("ns")));
  app.get(`${CORE}/pods/:name`, (c) => h.getOne(c, "pods", c.req.param("ns"), c.req.param("name")));
  app.get(`${CORE}/pods/:name/log`, (c) => {
    const { ns, name } = c.req.param();
    h.check(c, {
      verb: "get",
      group: "",
      resource: "pods",
      subresource: "log",
      namespace: ns,
      name,
    });
    const pod = cluster.store.get("pods", ns, name);
    return podLogResponse(cluster, pod, c.req.query(), c.req.raw.signal);
  });
  app.delete(`${CORE}/pods/:name`, async (c) => {
    const { ns, name } = c.req.param();
    h.check(c, { verb: "delete", group: "", resource: "pods", namespace: ns, name });
    cluster.store.get("pods", ns, name);
    const opts = await h.deleteOptions(c);
    return c.json(cluster.deletePod(ns, name, opts.gracePeriodSeconds).object);
  });
}

function secretRoutes(app: Hono<Env>, h: Handlers): void {
  const { cluster } = h.deps;
  app.get(`${CORE}/secrets`, (c) => h.listOrWatch(c, "secrets", c.req.param("ns")));
  app.get(
    `${CORE}/secrets/:name`,
    (c) => h.getOne(c, "secrets", c.req.param("ns"), c.req.param("name")),
  );
  app.post(`${CORE}/secrets`, async (c) => {
    const ns = c.req.param("ns");
    h.check(c, { verb: "create", group: "", resource: "secrets", namespace: ns });
    const s = await body(c, secretSchema, "Secret") as KObject;
    s.metadata.namespace = namespaceOf(s, ns);
    return c.json(cluster.createSecret(s), 201);
  });
  app.delete(`${CORE}/secrets/:name`, (c) => {
    const { ns, name } = c.req.param();
    h.check(c, { verb: "delete", group: "", resource: "secrets", namespace: ns, name });
    const s = cluster.store.get("secrets", ns, name);
    cluster.store.remove("secrets", ns, name);
    return c.json(success(name, "", "secrets", s.metadata.uid));
  });
}

function jobRoutes(app: Hono<Env>, h: Handlers): void {
  const { cluster } = h.deps;
  const BATCH = "/apis/batch/v1/namespaces/:ns";
  app.get(`${BATCH}/jobs`, (c) => h.listOrWatch(c, "jobs", c.req.param("ns")));
  app.get(
    `${BATCH}/jobs/:name`,
    (c) => h.getOne(c, "jobs", c.req.param("ns"), c.req.param("name")),
  );
  app.post(`${BATCH}/jobs`, async (c) => {
    const ns = c.req.param("ns");
    h.check(c, { verb: "create", group: "batch", resource: "jobs", namespace: ns });
    const j = await body(c, jobSchema, "Job") as KObject;
    j.metadata.namespace = namespaceOf(j, ns);
    if (!j.metadata.name && j.metadata.generateName) {
      j.metadata.name = `${j.metadata.generateName}${randomSuffix()}`;
    }
    return c.json(cluster.createJob(j), 201);
  });
  app.delete(`${BATCH}/jobs/:name`, async (c) => {
    const { ns, name } = c.req.param();
    h.check(c, { verb: "delete", group: "batch", resource: "jobs", namespace: ns, name });
    const opts = await h.deleteOptions(c);
    return c.json(cluster.deleteJob(ns, name, opts.propagationPolicy ?? "Orphan"));
  });
}

/** Builds the hono app of the fake API server. */
export function apiApp(deps: ApiDeps): Hono<Env> {
  const app = new Hono<Env>();
  app.onError((err, c) => {
    const status = err instanceof ApiError
      ? err.status
      : new ApiError(500, "InternalError", `Internal error occurred: ${err.message}`).status;
    return c.json(status, status.code as 400);
  });
  app.notFound((c) =>
    c.json(
      new ApiError(404, "NotFound", "the server could not find the requested resource").status,
      404,
    )
  );
  app.get("/version", (c) => c.json(VERSION));
  for (const p of ["/healthz", "/livez", "/readyz"]) app.get(p, (c) => c.text("ok"));
  app.use("*", async (c, next) => {
    const user = authenticate(deps.auth, c.req.header("authorization") ?? null, c.env?.clientCert);
    const url = new URL(c.req.url);
    deps.requests.push(`${c.req.method} ${url.pathname}${url.search} ${user.name}`);
    c.set("user", user);
    await next();
  });
  const h = handlers(deps);
  discoveryRoutes(app);
  podRoutes(app, h);
  secretRoutes(app, h);
  jobRoutes(app, h);
  return app;
}

function namespaceOf(o: KObject, ns: string): string {
  if (o.metadata.namespace && o.metadata.namespace !== ns) {
    throw badRequest(
      "the namespace of the provided object does not match the namespace sent on the request",
    );
  }
  return ns;
}
