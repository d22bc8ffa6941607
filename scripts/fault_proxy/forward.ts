/**
 * How the fault proxy sends a request upstream and the answer back: through `node:http(s)`
 * (default; keeps the client's `Content-Length` and tells when bytes were written, so a reset
 * after K bytes is exact) or through `fetch` with `duplex: "half"` (request bodies go chunked).
 * Hop-by-hop headers stay behind, and `Location` (and absolute `Link`) headers that point at
 * the upstream are rewritten to point at the proxy. A `reset` drops the client's connection
 * through the {@link Relay}.
 * @module
 */
import http from "node:http";
import https from "node:https";
import tls from "node:tls";
import { Readable } from "node:stream";
import type { Relay } from "./relay.ts";
import type { ResetSpec } from "./rules.ts";
import { sleep } from "./responses.ts";
import { countRequestBody, cutResponse, drainNode, nodeHeaders, writeBody } from "./streams.ts";
import type { RequestLogEntry } from "./types.ts";

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

/** One request to forward. */
export interface ForwardJob {
  req: Request;
  /** The request's URL as the proxy got it. */
  url: URL;
  /** The request's log entry: gets the status and the request body bytes forwarded. */
  entry: RequestLogEntry;
  /** The port of the relayed connection the request came on (for {@link Relay.kill}). */
  clientPort: number;
  /** Where to drop the connection, for a `reset` rule. */
  reset?: ResetSpec;
  /**
   * Bytes the relay had sent to the client when the request arrived: every earlier answer on the
   * connection (the client read it before sending this request), so this answer starts here.
   */
  sent: number;
}

/** Forwards requests to one upstream, and probes its Bearer challenge. */
export class Forwarder {
  /** The upstream's base URL. */
  readonly target: URL;
  /** The proxy's own base URL, for rewritten headers (set once the proxy listens). */
  self = "";
  /** The relay that drops client connections (set once the proxy listens). */
  relay!: Relay;
  readonly #how: "node" | "fetch";
  readonly #ca?: string;
  readonly #agent: http.Agent;
  readonly #oneShot: http.Agent;
  readonly #client?: Deno.HttpClient;
  #challenge?: Promise<string>;

  /** Forwards to `target` with `node:http(s)` or `fetch`, trusting the PEM `ca` as well. */
  constructor(target: URL, how: "node" | "fetch", ca?: string) {
    this.target = target;
    this.#how = how;
    this.#ca = ca;
    const secure = target.protocol === "https:";
    this.#agent = secure
      ? new https.Agent({ keepAlive: true, ca: ca ? [...tls.rootCertificates, ca] : undefined })
      : new http.Agent({ keepAlive: true });
    this.#oneShot = secure
      ? new https.Agent({ keepAlive: false, ca: ca ? [...tls.rootCertificates, ca] : undefined })
      : new http.Agent({ keepAlive: false });
    if (ca) this.#client = Deno.createHttpClient({ caCerts: [ca] });
  }

  /** Sends the request upstream and returns the answer (throws when the upstream fails). */
  forward(job: ForwardJob): Promise<Response> {
    return this.#how === "fetch" ? this.#forwardFetch(job) : this.#forwardNode(job);
  }

  /** The upstream's Bearer challenge (probed once; a made-up one when it has none). */
  challenge(): Promise<string> {
    this.#challenge ??= this.#probeChallenge();
    return this.#challenge;
  }

  /** Closes the upstream connections. */
  close(): void {
    this.#agent.destroy();
    this.#oneShot.destroy();
    this.#client?.close();
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

  /** Drops the client's connection; the answer returned after this never reaches anyone. */
  #drop(job: ForwardJob): Response {
    job.entry.status = 0;
    this.relay.kill(job.clientPort);
    return new Response(null, { status: 502 });
  }

  /**
   * For a body cut after K bytes: drops the client's connection (and `stop`s upstream) once the
   * head and those K bytes have reached the client (the relay counts them from `job.sent`).
   */
  #dropSoon(job: ForwardJob, stop: () => void): void {
    job.entry.status = 0;
    this.relay.killAfter(job.clientPort, job.sent + (job.reset?.response ?? 0), 100, stop);
  }

  async #forwardNode(job: ForwardJob): Promise<Response> {
    const { req, entry, reset } = job;
    const { upstream, response } = this.#nodeRequest(req, job.url, reset);
    const cutAt = reset?.request;
    const sent = writeBody(req.body, upstream, cutAt, (n) => entry.forwarded = n);
    if (cutAt !== undefined) {
      const result = await sent;
      if (result === "cut") {
        await sleep(100); // let the registry read what was written
        upstream.destroy();
        return this.#drop(job);
      }
    } else {
      sent.then((r) => {
        // the client went away: so does the upstream request
        if (r === "failed") upstream.destroy();
      });
    }
    return this.#nodeResponse(job, await response);
  }

  #nodeRequest(req: Request, url: URL, reset?: ResetSpec): {
    upstream: http.ClientRequest;
    response: Promise<http.IncomingMessage>;
  } {
    const target = this.#upstreamUrl(url);
    const secure = target.protocol === "https:";
    const upstream = (secure ? https : http).request({
      method: req.method,
      hostname: target.hostname.replace(/^\[|\]$/g, ""),
      port: target.port || (secure ? 443 : 80),
      path: target.pathname + target.search,
      headers: this.#requestHeaders(req),
      // Deno's node:http replays a request whose reused keep-alive connection is destroyed
      // (the registry would see a second, partial request), so any request that may be cut
      // (a body, or a planned reset) gets a connection of its own.
      agent: req.body || reset ? this.#oneShot : this.#agent,
      ...(secure && this.#ca ? { ca: [...tls.rootCertificates, this.#ca] } : {}),
    });
    const response = new Promise<http.IncomingMessage>((resolve, reject) => {
      upstream.on("response", resolve);
      upstream.on("error", reject);
    });
    response.catch(() => {});
    return { upstream, response };
  }

  async #nodeResponse(job: ForwardJob, res: http.IncomingMessage): Promise<Response> {
    const { req, entry, reset } = job;
    const status = res.statusCode ?? 502;
    if (reset?.response === 0) {
      await drainNode(res);
      return this.#drop(job);
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
        this.#dropSoon(job, () => res.destroy());
      }));
    }
    return new Response(body, { status, headers: outHeaders });
  }

  async #forwardFetch(job: ForwardJob): Promise<Response> {
    const { req, entry, reset } = job;
    const abort = new AbortController();
    let body: ReadableStream<Uint8Array> | null = req.body;
    let cut: Promise<void> | undefined;
    if (body) {
      let onCut = () => {};
      cut = new Promise<void>((resolve) => onCut = resolve);
      body = body.pipeThrough(
        countRequestBody(reset?.request, (n) => entry.forwarded = n, () => onCut()),
      );
    }
    const pending = fetch(this.#upstreamUrl(job.url), {
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
        return this.#drop(job);
      }
    }
    return this.#fetchResponse(job, await pending, abort);
  }

  async #fetchResponse(job: ForwardJob, res: Response, abort: AbortController): Promise<Response> {
    const { req, entry, reset } = job;
    if (reset?.response === 0) {
      await res.body?.cancel();
      return this.#drop(job);
    }
    entry.status = res.status;
    const headers = this.#responseHeaders(res.headers);
    let out: ReadableStream<Uint8Array> | null = res.body;
    if (out && reset?.response !== undefined) {
      out = out.pipeThrough(cutResponse(reset.response, () => {
        this.#dropSoon(job, () => abort.abort());
      }));
    }
    return new Response(req.method === "HEAD" ? null : out, { status: res.status, headers });
  }
}
