/**
 * A fault-injecting HTTP reverse proxy for registry tests: hono on `Deno.serve`, listening on
 * 127.0.0.1, in front of a real registry. Bodies stream both ways without buffering, `Location`
 * (and absolute `Link`) headers that point at the upstream are rewritten to point at the proxy,
 * and a small list of rules injects faults:
 *
 * - `status`: answer with this status instead of forwarding (an OCI error body; `retryAfter`
 *   adds `Retry-After`), e.g. a burst of 503s (`count`) or every Kth request (`every`);
 * - `reset: {request: K}`: forward the request but drop the client's connection (and abort the
 *   upstream request, so the registry sees a partial upload) after K bytes of the request body
 *   went upstream; `reset: {response: K}`: drop it after K bytes of the response body (K = 0:
 *   before the response headers, after the registry did the work);
 * - `delay`: wait this many ms before forwarding (alone: a slow response);
 * - `expireToken: {afterRequests, afterMs}`: a Bearer token the proxy has seen used
 *   `afterRequests` times (or first saw `afterMs` ms ago) is refused with 401 and the upstream's
 *   `WWW-Authenticate: Bearer …` challenge plus `scope` and `error="invalid_token"`, as
 *   distribution answers a token that expired mid-push.
 *
 * A rule matches by `method` (`PUT`, `PUT|PATCH`; any when absent), a `path` regex (on the
 * path without the query) and `matchHeaders` (header name → regex, e.g. a PATCH whose
 * `content-range` starts at 1 MiB). Every matching rule counts the request (`matched`); the first
 * matching rule whose selection fires (`skip` the first N matches, then every `every`th match,
 * at most `count` times) applies its fault and counts it (`faulted`).
 *
 * Dropping a connection is something `Deno.serve` cannot do (a handler can only answer, and an
 * erroring body still sends the headers first), so the public port is a small TCP relay in front
 * of the `Deno.serve` listener: the handler asks the relay to close the client's socket.
 *
 * Upstream requests go through `node:http(s)` by default (`forward: "node"`): it keeps the
 * client's `Content-Length` and tells when bytes were written, so a reset after K bytes is
 * exact. `forward: "fetch"` uses `fetch` with `duplex: "half"`, which sends request bodies chunked
 * (distribution 2.8 accepts chunked PATCH and PUT bodies).
 *
 * Use it imported (`startFaultProxy(target, rules)`), or from the command line:
 * `deno run -A scripts/fault_proxy.ts --target URL [--rules JSON] [--port N] [--ca FILE]
 * [--forward node|fetch]`, which prints `{"url":…,"port":…}` and runs until SIGINT/SIGTERM.
 * At run time: `GET /__fault` gives the counters, `POST /__fault` with `{"rules":[…]}` (or a
 * bare array) replaces the rules and zeroes the counters, `DELETE /__fault` removes every rule.
 * @module
 */
import { Hono } from "hono";
import { Command } from "commander";
import http from "node:http";
import https from "node:https";
import tls from "node:tls";
import { Readable } from "node:stream";
import { z } from "zod";

/** One fault rule (see the module documentation). */
export const FaultRuleSchema = z.object({
  /** Name for the counters; `rule<N>` when absent. */
  id: z.string().optional(),
  /** Methods, `|`-separated, case-insensitive; every method when absent. */
  method: z.string().optional(),
  /** Regular expression tested against the request path (without the query). */
  path: z.string().optional(),
  /** Request headers (lower-case names) that must be present and match these regexes. */
  matchHeaders: z.record(z.string(), z.string()).optional(),
  /** Let the first `skip` matching requests through untouched. */
  skip: z.number().int().min(0).optional(),
  /** After `skip`, fault only every `every`th matching request (1: each). */
  every: z.number().int().min(1).optional(),
  /** Fault at most this many requests (for `expireToken`: answer at most this many 401s). */
  count: z.number().int().min(0).optional(),
  /** Answer with this status instead of forwarding. */
  status: z.number().int().min(100).max(599).optional(),
  /** `Retry-After` value sent with `status`. */
  retryAfter: z.union([z.number(), z.string()]).optional(),
  /** Body sent with `status` (default: an OCI error body). */
  body: z.string().optional(),
  /** Extra headers sent with `status`. */
  headers: z.record(z.string(), z.string()).optional(),
  /** Drop the connection after K bytes of the request body (or of the response body). */
  reset: z.object({
    request: z.number().int().min(0).optional(),
    response: z.number().int().min(0).optional(),
  }).refine((r) => (r.request === undefined) !== (r.response === undefined), {
    message: "reset needs exactly one of request or response",
  }).optional(),
  /** Milliseconds to wait before forwarding (or before answering with `status`). */
  delay: z.number().min(0).optional(),
  /** Refuse Bearer tokens after they were used this many times or are this old. */
  expireToken: z.object({
    afterRequests: z.number().int().min(0).optional(),
    afterMs: z.number().min(0).optional(),
  }).refine((e) => e.afterRequests !== undefined || e.afterMs !== undefined, {
    message: "expireToken needs afterRequests or afterMs",
  }).optional(),
  /** Read (and drop) the request body before answering with `status` or 401 (default true). */
  drain: z.boolean().optional(),
});
/** One fault rule. */
export type FaultRule = z.input<typeof FaultRuleSchema>;

/** Counters of one rule. */
export interface RuleStats {
  id: string;
  /** Requests that matched method and path. */
  matched: number;
  /** Requests the fault was applied to. */
  faulted: number;
}

/** One request the proxy saw. */
export interface RequestLogEntry {
  method: string;
  path: string;
  /** Status sent to the client; 0 when the connection was dropped. */
  status: number;
  /** Id of the rule whose fault was applied. */
  fault?: string;
  /** Request body bytes forwarded upstream. */
  forwarded: number;
  /** The `digest` query parameter (blob upload completion), when present. */
  digest?: string;
}

/** Counters of the proxy. */
export interface ProxyStats {
  requests: number;
  rules: RuleStats[];
  log: RequestLogEntry[];
}

/** Options of {@link startFaultProxy}. */
export interface FaultProxyOptions {
  /** Port to listen on (127.0.0.1); 0 (default) picks a free one. */
  port?: number;
  /** PEM CA certificate file trusted for an `https://` upstream. */
  caFile?: string;
  /** How requests go upstream (default `node`). */
  forward?: "node" | "fetch";
  /** Most entries kept in the request log (default 10000). */
  logLimit?: number;
}

/** A running proxy. */
export interface FaultProxy {
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** `127.0.0.1:PORT`, for image references. */
  host: string;
  port: number;
  /** Replaces the rules and zeroes every counter. */
  setRules(rules: FaultRule[]): void;
  /** A snapshot of the counters and the request log. */
  stats(): ProxyStats;
  /** Zeroes the counters and the log, keeping the rules. */
  resetStats(): void;
  /** Stops listening and closes every connection. */
  stop(): Promise<void>;
}

/** Starts a fault proxy in front of `target` (a base URL such as `http://127.0.0.1:5000`). */
export async function startFaultProxy(
  target: string,
  rules: FaultRule[] = [],
  options: FaultProxyOptions = {},
): Promise<FaultProxy> {
  const ca = options.caFile ? await Deno.readTextFile(options.caFile) : undefined;
  const core = new ProxyCore(new URL(target), options, ca);
  core.setRules(rules);
  const app = new Hono<{ Bindings: Deno.ServeHandlerInfo<Deno.NetAddr> }>();
  app.get("/__fault", (c) => c.json(core.stats()));
  app.post("/__fault", async (c) => {
    try {
      const body = await c.req.json();
      core.setRules(Array.isArray(body) ? body : body.rules ?? []);
      return c.json({ ok: true, rules: core.stats().rules });
    } catch (e) {
      return c.json({ ok: false, error: (e as Error).message }, 400);
    }
  });
  app.delete("/__fault", (c) => {
    core.setRules([]);
    return c.json({ ok: true });
  });
  app.all("*", (c) => core.handle(c.req.raw, c.env.remoteAddr.port));

  const inner = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
    onError(err) {
      return errorResponse(502, "UNAVAILABLE", `fault proxy: ${(err as Error).message}`);
    },
  }, (req, info) => app.fetch(req, info as Deno.ServeHandlerInfo<Deno.NetAddr>));
  const relay = new Relay(options.port ?? 0, inner.addr.port);
  core.relay = relay;
  const port = relay.port;
  core.self = `http://127.0.0.1:${port}`;
  return {
    url: core.self,
    host: `127.0.0.1:${port}`,
    port,
    setRules: (r) => core.setRules(r),
    stats: () => core.stats(),
    resetStats: () => core.resetStats(),
    stop: async () => {
      relay.close();
      await inner.shutdown().catch(() => {});
      core.close();
    },
  };
}

/** Headers that belong to one connection and are not forwarded. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
]);

/** OCI error codes used for injected statuses. */
const STATUS_CODES: Record<number, string> = {
  400: "UNSUPPORTED",
  401: "UNAUTHORIZED",
  403: "DENIED",
  404: "NAME_UNKNOWN",
  429: "TOOMANYREQUESTS",
};

class Rule {
  readonly spec: z.output<typeof FaultRuleSchema>;
  readonly id: string;
  readonly #methods?: Set<string>;
  readonly #path?: RegExp;
  readonly #headers: Array<[string, RegExp]>;
  matched = 0;
  faulted = 0;
  /** Bearer tokens seen: first use and number of uses (for `expireToken`). */
  readonly tokens = new Map<string, { first: number; uses: number; expired: boolean }>();

  constructor(spec: FaultRule, index: number) {
    this.spec = FaultRuleSchema.parse(spec);
    this.id = this.spec.id ?? `rule${index}`;
    if (this.spec.method) {
      this.#methods = new Set(this.spec.method.toUpperCase().split("|").map((m) => m.trim()));
    }
    if (this.spec.path !== undefined) this.#path = new RegExp(this.spec.path);
    this.#headers = Object.entries(this.spec.matchHeaders ?? {}).map((
      [k, v],
    ) => [k.toLowerCase(), new RegExp(v)]);
  }

  matches(method: string, path: string, headers: Headers): boolean {
    if (this.#methods && !this.#methods.has(method)) return false;
    if (this.#path && !this.#path.test(path)) return false;
    return this.#headers.every(([name, re]) => {
      const value = headers.get(name);
      return value !== null && re.test(value);
    });
  }

  /** Counts a match; true when the fault applies to it. */
  fires(): boolean {
    const n = ++this.matched - (this.spec.skip ?? 0);
    if (n <= 0) return false;
    if (this.spec.every && n % this.spec.every !== 0) return false;
    if (this.spec.count !== undefined && this.faulted >= this.spec.count) return false;
    return true;
  }

  /** For `expireToken`: counts a match; true when the request's token has expired. */
  tokenExpired(authorization: string | null): boolean {
    this.matched++;
    const expiry = this.spec.expireToken!;
    const token = authorization?.match(/^Bearer\s+(\S+)/i)?.[1];
    if (!token) return false;
    const now = Date.now();
    let rec = this.tokens.get(token);
    if (!rec) this.tokens.set(token, rec = { first: now, uses: 0, expired: false });
    if (
      !rec.expired &&
      ((expiry.afterRequests !== undefined && rec.uses >= expiry.afterRequests) ||
        (expiry.afterMs !== undefined && now - rec.first >= expiry.afterMs))
    ) {
      rec.expired = true;
    }
    if (rec.expired && (this.spec.count === undefined || this.faulted < this.spec.count)) {
      return true;
    }
    rec.uses++;
    return false;
  }
}

/** What the handler decided for one request. */
interface Decision {
  rule?: Rule;
  kind: "pass" | "status" | "expire" | "reset";
}

class ProxyCore {
  readonly target: URL;
  readonly options: FaultProxyOptions;
  readonly ca?: string;
  relay!: Relay;
  self = "";
  #rules: Rule[] = [];
  #requests = 0;
  #log: RequestLogEntry[] = [];
  #agent: http.Agent;
  #oneShot: http.Agent;
  #client?: Deno.HttpClient;
  #challenge?: Promise<string>;

  constructor(target: URL, options: FaultProxyOptions, ca?: string) {
    this.target = target;
    this.options = options;
    this.ca = ca;
    const secure = target.protocol === "https:";
    this.#agent = secure
      ? new https.Agent({ keepAlive: true, ca: ca ? [...tls.rootCertificates, ca] : undefined })
      : new http.Agent({ keepAlive: true });
    this.#oneShot = secure
      ? new https.Agent({ keepAlive: false, ca: ca ? [...tls.rootCertificates, ca] : undefined })
      : new http.Agent({ keepAlive: false });
    if (ca) this.#client = Deno.createHttpClient({ caCerts: [ca] });
  }

  setRules(rules: FaultRule[]): void {
    this.#rules = rules.map((r, i) => new Rule(r, i));
    this.resetStats();
  }

  resetStats(): void {
    this.#requests = 0;
    this.#log = [];
    for (const r of this.#rules) {
      r.matched = 0;
      r.faulted = 0;
      r.tokens.clear();
    }
  }

  stats(): ProxyStats {
    return {
      requests: this.#requests,
      rules: this.#rules.map((r) => ({ id: r.id, matched: r.matched, faulted: r.faulted })),
      log: this.#log.map((e) => ({ ...e })),
    };
  }

  close(): void {
    this.#agent.destroy();
    this.#oneShot.destroy();
    this.#client?.close();
  }

  #decide(req: Request, path: string): Decision {
    let decision: Decision = { kind: "pass" };
    for (const rule of this.#rules) {
      if (!rule.matches(req.method, path, req.headers)) continue;
      if (decision.rule) {
        rule.matched++;
        continue;
      }
      if (rule.spec.expireToken) {
        if (rule.tokenExpired(req.headers.get("authorization"))) {
          decision = { rule, kind: "expire" };
        }
      } else if (rule.fires()) {
        const kind = rule.spec.status !== undefined ? "status" : rule.spec.reset ? "reset" : "pass";
        decision = { rule, kind };
      }
      if (decision.rule) decision.rule.faulted++;
    }
    return decision;
  }

  async handle(req: Request, clientPort: number): Promise<Response> {
    const url = new URL(req.url);
    this.#requests++;
    const entry: RequestLogEntry = {
      method: req.method,
      path: url.pathname,
      status: 0,
      forwarded: 0,
    };
    const digest = url.searchParams.get("digest");
    if (digest) entry.digest = digest;
    if (this.#log.length < (this.options.logLimit ?? 10000)) this.#log.push(entry);
    const decision = this.#decide(req, url.pathname);
    const spec = decision.rule?.spec;
    if (decision.rule) entry.fault = decision.rule.id;
    if (spec?.delay) await sleep(spec.delay);
    if (decision.kind === "status") {
      if (spec!.drain !== false) await drain(req.body);
      const res = injectedStatus(spec!, decision.rule!.id);
      entry.status = res.status;
      return res;
    }
    if (decision.kind === "expire") {
      if (spec!.drain !== false) await drain(req.body);
      const res = await this.#expired(req.method, url.pathname);
      entry.status = res.status;
      return res;
    }
    const reset = decision.kind === "reset" ? spec!.reset : undefined;
    try {
      return await this.#forward(req, url, entry, clientPort, reset);
    } catch (err) {
      entry.status = 502;
      return errorResponse(502, "UNAVAILABLE", `fault proxy: upstream failed: ${errText(err)}`);
    }
  }

  /** The 401 distribution sends for an expired token: its challenge, with scope and error. */
  async #expired(method: string, path: string): Promise<Response> {
    this.#challenge ??= this.#probeChallenge();
    let challenge = await this.#challenge;
    const name = path.match(/^\/v2\/(.+?)\/(?:blobs|manifests|tags)\//)?.[1];
    const actions = method === "GET" || method === "HEAD"
      ? ["pull"]
      : method === "DELETE"
      ? ["delete"]
      : ["pull", "push"];
    if (name) challenge += `,scope="repository:${name}:${actions.join(",")}"`;
    challenge += `,error="invalid_token"`;
    const detail = name
      ? actions.map((a) => ({ Type: "repository", Class: "", Name: name, Action: a }))
      : null;
    const body = JSON.stringify({
      errors: [{ code: "UNAUTHORIZED", message: "authentication required", detail }],
    });
    return new Response(method === "HEAD" ? null : body, {
      status: 401,
      headers: {
        "content-type": "application/json; charset=utf-8",
        "docker-distribution-api-version": "registry/2.0",
        "www-authenticate": challenge,
        "content-length": String(body.length),
      },
    });
  }

  /** The upstream's Bearer challenge from an anonymous `GET /v2/`. */
  async #probeChallenge(): Promise<string> {
    try {
      const res = await fetch(
        new URL("/v2/", this.target),
        { client: this.#client } as RequestInit,
      );
      await res.body?.cancel();
      const value = res.headers.get("www-authenticate");
      if (value && /^bearer\s/i.test(value)) return value;
    } catch {
      // fall through
    }
    this.#challenge = undefined;
    return `Bearer realm="${this.self}/__fault/no-token-server",service="fault-proxy"`;
  }

  #upstreamUrl(url: URL): URL {
    return new URL(url.pathname + url.search, this.target);
  }

  #requestHeaders(req: Request): Record<string, string> {
    const headers: Record<string, string> = {};
    for (const [k, v] of req.headers) if (!HOP_BY_HOP.has(k)) headers[k] = v;
    headers["host"] = this.target.host;
    return headers;
  }

  #responseHeaders(source: Iterable<[string, string]>): Headers {
    const headers = new Headers();
    for (const [k, v] of source) {
      if (HOP_BY_HOP.has(k)) continue;
      if (k === "location") headers.append(k, this.#rewrite(v));
      else if (k === "link") headers.append(k, v.replaceAll(this.target.origin, this.self));
      else headers.append(k, v);
    }
    return headers;
  }

  /** Points an upstream URL at the proxy. */
  #rewrite(location: string): string {
    if (location.startsWith(this.target.origin + "/")) {
      return this.self + location.slice(this.target.origin.length);
    }
    return location;
  }

  #forward(
    req: Request,
    url: URL,
    entry: RequestLogEntry,
    clientPort: number,
    reset?: { request?: number; response?: number },
  ): Promise<Response> {
    return this.options.forward === "fetch"
      ? this.#forwardFetch(req, url, entry, clientPort, reset)
      : this.#forwardNode(req, url, entry, clientPort, reset);
  }

  /** Drops the client's connection; the answer returned after this never reaches anyone. */
  #drop(entry: RequestLogEntry, clientPort: number): Response {
    entry.status = 0;
    this.relay.kill(clientPort);
    return new Response(null, { status: 502 });
  }

  async #forwardNode(
    req: Request,
    url: URL,
    entry: RequestLogEntry,
    clientPort: number,
    reset?: { request?: number; response?: number },
  ): Promise<Response> {
    const target = this.#upstreamUrl(url);
    const secure = target.protocol === "https:";
    const headers = this.#requestHeaders(req);
    const upstream = (secure ? https : http).request({
      method: req.method,
      hostname: target.hostname.replace(/^\[|\]$/g, ""),
      port: target.port || (secure ? 443 : 80),
      path: target.pathname + target.search,
      headers,
      // Deno's node:http replays a request whose reused keep-alive connection is destroyed
      // (the registry would see a second, partial request), so any request that may be cut
      // (a body, or a planned reset) gets a connection of its own.
      agent: req.body || reset ? this.#oneShot : this.#agent,
      ...(secure && this.ca ? { ca: [...tls.rootCertificates, this.ca] } : {}),
    });
    const response = new Promise<http.IncomingMessage>((resolve, reject) => {
      upstream.on("response", resolve);
      upstream.on("error", reject);
    });
    response.catch(() => {});
    const cutAt = reset?.request;
    const sent = writeBody(req.body, upstream, cutAt, (n) => entry.forwarded = n);
    if (cutAt !== undefined) {
      const result = await sent;
      if (result === "cut") {
        await sleep(100); // let the registry read what was written
        upstream.destroy();
        return this.#drop(entry, clientPort);
      }
    } else {
      sent.then((r) => {
        if (r === "failed") upstream.destroy(); // the client went away: so does the upstream request
      });
    }
    const res = await response;
    const status = res.statusCode ?? 502;
    if (reset?.response === 0) {
      await drainNode(res);
      return this.#drop(entry, clientPort);
    }
    const outHeaders = this.#responseHeaders(nodeHeaders(res.headers));
    entry.status = status;
    if (req.method === "HEAD" || status === 204 || status === 304) {
      res.resume();
      return new Response(null, { status, headers: outHeaders });
    }
    let body = Readable.toWeb(res) as unknown as ReadableStream<Uint8Array>;
    if (reset?.response !== undefined) {
      body = body.pipeThrough(cutResponse(reset.response, () => {
        entry.status = 0;
        setTimeout(() => {
          this.relay.kill(clientPort);
          res.destroy();
        }, 100);
      }));
    }
    return new Response(body, { status, headers: outHeaders });
  }

  async #forwardFetch(
    req: Request,
    url: URL,
    entry: RequestLogEntry,
    clientPort: number,
    reset?: { request?: number; response?: number },
  ): Promise<Response> {
    const abort = new AbortController();
    let body: ReadableStream<Uint8Array> | null = req.body;
    let cut: Promise<void> | undefined;
    if (body) {
      let forwarded = 0;
      const limit = reset?.request;
      let onCut = () => {};
      cut = new Promise<void>((resolve) => onCut = resolve);
      body = body.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, controller) {
            if (limit !== undefined && forwarded + chunk.byteLength >= limit) {
              controller.enqueue(chunk.subarray(0, limit - forwarded));
              forwarded = limit;
              entry.forwarded = forwarded;
              onCut();
              return new Promise<void>(() => {}); // hold the stream open until the abort
            }
            forwarded += chunk.byteLength;
            entry.forwarded = forwarded;
            controller.enqueue(chunk);
          },
        }),
      );
    }
    const pending = fetch(this.#upstreamUrl(url), {
      method: req.method,
      headers: this.#requestHeaders(req),
      body,
      duplex: "half",
      redirect: "manual",
      signal: abort.signal,
      client: this.#client,
    } as RequestInit);
    if (reset?.request !== undefined) {
      const first = await Promise.race([cut!.then(() => "cut" as const), pending]);
      if (first === "cut") {
        await sleep(100);
        abort.abort();
        pending.catch(() => {});
        return this.#drop(entry, clientPort);
      }
    }
    const res = await pending;
    if (reset?.response === 0) {
      await res.body?.cancel();
      return this.#drop(entry, clientPort);
    }
    entry.status = res.status;
    const headers = this.#responseHeaders(res.headers);
    let out: ReadableStream<Uint8Array> | null = res.body;
    if (out && reset?.response !== undefined) {
      out = out.pipeThrough(cutResponse(reset.response, () => {
        entry.status = 0;
        setTimeout(() => {
          this.relay.kill(clientPort);
          abort.abort();
        }, 100);
      }));
    }
    return new Response(req.method === "HEAD" ? null : out, { status: res.status, headers });
  }
}

/** Writes a request body to a node request; `cut` when it stopped at `limit` bytes. */
async function writeBody(
  body: ReadableStream<Uint8Array> | null,
  req: http.ClientRequest,
  limit: number | undefined,
  progress: (n: number) => void,
): Promise<"done" | "cut" | "failed"> {
  let written = 0;
  const write = (chunk: Uint8Array) =>
    new Promise<void>((resolve, reject) => {
      req.write(chunk, (err) => err ? reject(err) : resolve());
    });
  if (!body) {
    if (limit !== undefined) {
      req.flushHeaders();
      return "cut";
    }
    req.end();
    return "done";
  }
  try {
    for await (const chunk of body) {
      if (limit !== undefined && written + chunk.byteLength >= limit) {
        const part = chunk.subarray(0, limit - written);
        if (part.byteLength > 0) await write(part);
        else req.flushHeaders();
        progress(written = limit);
        return "cut";
      }
      await write(chunk);
      progress(written += chunk.byteLength);
    }
    if (limit !== undefined) {
      req.flushHeaders();
      return "cut"; // the body was shorter than the limit: cut at its end, before completion
    }
    req.end();
    return "done";
  } catch {
    return "failed";
  }
}

/** Passes `limit` bytes of a response body, then calls `onCut` and stalls. */
function cutResponse(limit: number, onCut: () => void): TransformStream<Uint8Array, Uint8Array> {
  let sent = 0;
  let done = false;
  return new TransformStream({
    transform(chunk, controller) {
      if (done) return;
      if (sent + chunk.byteLength >= limit) {
        if (limit > sent) controller.enqueue(chunk.subarray(0, limit - sent));
        sent = limit;
        done = true;
        onCut();
        return;
      }
      sent += chunk.byteLength;
      controller.enqueue(chunk);
    },
    flush() {
      if (!done) onCut(); // shorter than the limit: drop before the end is confirmed
      return new Promise<void>(() => {});
    },
  });
}

function nodeHeaders(h: http.IncomingHttpHeaders): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [k, v] of Object.entries(h)) {
    if (Array.isArray(v)) v.forEach((x) => out.push([k, x]));
    else if (v !== undefined) out.push([k, String(v)]);
  }
  return out;
}

function injectedStatus(spec: z.output<typeof FaultRuleSchema>, id: string): Response {
  const status = spec.status!;
  const code = STATUS_CODES[status] ?? (status >= 500 ? "UNAVAILABLE" : "UNKNOWN");
  const headers: Record<string, string> = {
    "docker-distribution-api-version": "registry/2.0",
    ...(spec.headers ?? {}),
  };
  if (spec.retryAfter !== undefined) headers["retry-after"] = String(spec.retryAfter);
  if (spec.body !== undefined) {
    return new Response(noBody(status) ? null : spec.body, { status, headers });
  }
  const res = errorResponse(status, code, `fault injected by the fault proxy (rule ${id})`);
  for (const [k, v] of Object.entries(headers)) res.headers.set(k, v);
  return res;
}

function noBody(status: number): boolean {
  return status === 204 || status === 304 || status < 200;
}

function errorResponse(status: number, code: string, message: string): Response {
  const body = JSON.stringify({ errors: [{ code, message }] });
  return new Response(noBody(status) ? null : body, {
    status,
    headers: { "content-type": "application/json; charset=utf-8" },
  });
}

async function drain(body: ReadableStream<Uint8Array> | null): Promise<void> {
  if (!body) return;
  try {
    for await (const _ of body) {
      // dropped
    }
  } catch {
    // the client went away
  }
}

function drainNode(res: http.IncomingMessage): Promise<void> {
  return new Promise((resolve) => {
    res.on("end", resolve);
    res.on("error", () => resolve());
    res.on("close", () => resolve());
    res.resume();
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function errText(err: unknown): string {
  const e = err as { message?: string; code?: string };
  return [e?.message ?? String(err), e?.code].filter(Boolean).join(" ");
}

/**
 * The public TCP port: relays each connection to the `Deno.serve` listener and can drop one,
 * identified by the port its relayed connection comes from (the handler's `remoteAddr`).
 */
class Relay {
  readonly #listener: Deno.TcpListener;
  readonly #innerPort: number;
  readonly #pairs = new Map<number, { client: Deno.TcpConn; inner: Deno.TcpConn }>();
  readonly #pending = new Set<Deno.TcpConn>();
  #closed = false;

  constructor(port: number, innerPort: number) {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port });
    this.#innerPort = innerPort;
    this.#accept();
  }

  get port(): number {
    return this.#listener.addr.port;
  }

  async #accept(): Promise<void> {
    try {
      for await (const conn of this.#listener) this.#relay(conn);
    } catch {
      // closed
    }
  }

  async #relay(client: Deno.TcpConn): Promise<void> {
    this.#pending.add(client);
    let inner: Deno.TcpConn;
    try {
      inner = await Deno.connect({ hostname: "127.0.0.1", port: this.#innerPort });
    } catch {
      this.#pending.delete(client);
      closeQuietly(client);
      return;
    }
    this.#pending.delete(client);
    if (this.#closed) {
      closeQuietly(client);
      closeQuietly(inner);
      return;
    }
    inner.setNoDelay(true);
    client.setNoDelay(true);
    const key = (inner.localAddr as Deno.NetAddr).port;
    const pair = { client, inner };
    this.#pairs.set(key, pair);
    await Promise.all([pump(client, inner), pump(inner, client)]);
    if (this.#pairs.get(key) === pair) this.#pairs.delete(key);
    closeQuietly(client);
    closeQuietly(inner);
  }

  /** Drops the client connection relayed from inner port `port`. */
  kill(port: number): void {
    const pair = this.#pairs.get(port);
    if (!pair) return;
    this.#pairs.delete(port);
    closeQuietly(pair.client);
    closeQuietly(pair.inner);
  }

  close(): void {
    this.#closed = true;
    try {
      this.#listener.close();
    } catch {
      // already closed
    }
    for (const port of [...this.#pairs.keys()]) this.kill(port);
    for (const c of this.#pending) closeQuietly(c);
  }
}

async function pump(from: Deno.TcpConn, to: Deno.TcpConn): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n = await from.read(buf);
      if (n === null) break;
      let off = 0;
      while (off < n) off += await to.write(buf.subarray(off, n));
    }
    await to.closeWrite();
  } catch {
    closeQuietly(from);
    closeQuietly(to);
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

if (import.meta.main) {
  const program = new Command("fault_proxy")
    .description("fault-injecting reverse proxy for registry tests")
    .requiredOption("--target <url>", "upstream base URL, e.g. http://127.0.0.1:5000")
    .option("--rules <json>", "JSON array of fault rules", "[]")
    .option("--port <n>", "port on 127.0.0.1 (0: any free port)", "0")
    .option("--ca <file>", "PEM CA certificate for an https upstream")
    .option("--forward <how>", "node or fetch", "node")
    .parse(["deno", "fault_proxy", ...Deno.args]);
  const opts = program.opts<
    { target: string; rules: string; port: string; ca?: string; forward: string }
  >();
  let rules: FaultRule[];
  try {
    rules = z.array(FaultRuleSchema).parse(JSON.parse(opts.rules)) as FaultRule[];
  } catch (e) {
    console.error(`error: bad --rules: ${(e as Error).message.replace(/\s+/g, " ")}`);
    Deno.exit(2);
  }
  if (opts.forward !== "node" && opts.forward !== "fetch") {
    console.error(`error: --forward must be node or fetch`);
    Deno.exit(2);
  }
  const proxy = await startFaultProxy(opts.target, rules, {
    port: Number(opts.port),
    caFile: opts.ca,
    forward: opts.forward,
  });
  console.log(JSON.stringify({ url: proxy.url, port: proxy.port, target: opts.target }));
  const stop = async () => {
    await proxy.stop();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
}
