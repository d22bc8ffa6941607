/**
 * The HTTP transport of the registry client. `fetch` (with one `Deno.HttpClient` per set of TLS
 * settings) carries API calls and downloads; `node:http(s)` carries what `fetch` cannot: streamed
 * bodies with a real `Content-Length` (fetch sends them chunked, which some registries refuse) and
 * hosts whose certificates are not verified. Redirects are followed here, and `Authorization` is
 * never forwarded to another host.
 * @module
 */
import http from "node:http";
import https from "node:https";
import tls from "node:tls";
import { Readable } from "node:stream";
import { concatBytes } from "../bytes.ts";
import { KanikoError } from "../errors.ts";
import type { HttpRequest, HttpResponse, HttpTransport, SizedStream } from "./http_types.ts";
import { type Http1Tls, sendHttp1 } from "./http1.ts";
import type { HostSettings } from "./options.ts";

const MAX_REDIRECTS = 5;
/** Default limit for bodies read into memory (manifests, JSON): 4 MiB, as distribution-spec says. */
export const DEFAULT_BODY_LIMIT = 4 * 1024 * 1024;

/** Options for {@link Transport}. */
export interface TransportOptions {
  /** `User-Agent` header value. */
  userAgent?: string;
  /** Milliseconds to wait for response headers before failing. Default 120000. */
  headersTimeout?: number;
}

/** The production {@link HttpTransport}. */
export class Transport implements HttpTransport {
  #clients = new Map<string, Deno.HttpClient>();
  #agents = new Map<string, http.Agent>();
  #files = new Map<string, string>();
  #userAgent: string;
  #headersTimeout: number;

  constructor(options: TransportOptions = {}) {
    this.#userAgent = options.userAgent ?? "kaniko-deno";
    this.#headersTimeout = options.headersTimeout ?? 120_000;
  }

  /** Sends a request, following up to 5 redirects. */
  async send(request: HttpRequest): Promise<HttpResponse> {
    request.signal?.throwIfAborted();
    let url = request.url;
    let headers: Record<string, string> = {
      "user-agent": this.#userAgent,
      ...lowerKeys(request.headers),
    };
    let method = request.method;
    let body = request.body;
    for (let hop = 0;; hop++) {
      const response = await this.#sendOnce({ ...request, method, url, headers, body });
      const location = response.headers.get("location");
      if (
        ![301, 302, 303, 307, 308].includes(response.status) || !location || hop >= MAX_REDIRECTS
      ) {
        return response;
      }
      if (isSizedStream(request.body) && ![303].includes(response.status)) return response;
      await response.discard();
      const next = new URL(location, url);
      if (next.host !== new URL(url).host) {
        headers = { ...headers };
        delete headers["authorization"];
      }
      if (response.status === 303) {
        method = "GET"; // 303 See Other: fetch the result, without the body
        body = undefined;
        delete headers["content-length"];
        delete headers["content-type"];
      }
      url = next.toString();
    }
  }

  /** Closes pooled connections. */
  close(): void {
    for (const c of this.#clients.values()) c.close();
    for (const a of this.#agents.values()) a.destroy();
    this.#clients.clear();
    this.#agents.clear();
  }

  async #sendOnce(request: HttpRequest & { headers: Record<string, string> }) {
    const url = new URL(request.url);
    const host = request.host ?? { allowHttp: false, skipVerify: false };
    const secure = url.protocol === "https:";
    try {
      if (secure && host.skipVerify) return await this.#sendNode(url, request, host);
      if (isSizedStream(request.body)) return await this.#sendSized(url, request, host);
      return await this.#sendFetch(url, request, host);
    } catch (err) {
      if (err instanceof KanikoError) throw err;
      throw networkError(url, err, host);
    }
  }

  /** A streamed body with a real Content-Length, over a connection of its own (`http1.ts`). */
  async #sendSized(
    url: URL,
    request: HttpRequest & { headers: Record<string, string> },
    host: HostSettings,
  ): Promise<HttpResponse> {
    const body = request.body as SizedStream;
    let tls: Http1Tls | undefined;
    if (url.protocol === "https:") {
      tls = {};
      if (host.caFile) tls.caCerts = [await this.#read(host.caFile, "CA certificate")];
      if (host.clientCert) {
        tls.cert = await this.#read(host.clientCert.cert, "client certificate");
        tls.key = await this.#read(host.clientCert.key, "client key");
      }
    }
    const res = await sendHttp1({
      method: request.method,
      url,
      headers: request.headers,
      body: body.stream,
      length: body.length,
      tls,
      idleTimeout: this.#headersTimeout,
      signal: request.signal,
    });
    return wrapResponse(res.status, res.headers, url.toString(), guardBody(res.body, url, host));
  }

  async #sendFetch(
    url: URL,
    request: HttpRequest & { headers: Record<string, string> },
    host: HostSettings,
  ): Promise<HttpResponse> {
    const client = await this.#client(host);
    // The timeout covers the wait for the response headers only, never the body's transfer.
    const timeout = new AbortController();
    const timer = setTimeout(
      () => timeout.abort(new Error("timed out waiting for the response")),
      this.#headersTimeout,
    );
    const signal = request.signal
      ? AbortSignal.any([request.signal, timeout.signal])
      : timeout.signal;
    let res: Response;
    try {
      res = await fetch(url, {
        method: request.method,
        headers: request.headers,
        body: request.body as Uint8Array | string | undefined,
        redirect: "manual",
        signal,
        client,
      } as RequestInit);
    } finally {
      clearTimeout(timer);
    }
    const body = res.body && guardBody(res.body, url, host);
    return wrapResponse(res.status, res.headers, res.url || url.toString(), body);
  }

  async #sendNode(
    url: URL,
    request: HttpRequest & { headers: Record<string, string> },
    host: HostSettings,
  ): Promise<HttpResponse> {
    const secure = url.protocol === "https:";
    const tlsOptions = secure ? await this.#nodeTls(host) : {};
    const headers: Record<string, string> = { ...request.headers };
    const body = request.body;
    if (isSizedStream(body)) headers["content-length"] = String(body.length);
    else if (body !== undefined) headers["content-length"] = String(bodyLength(body));
    // A streamed body gets a connection of its own: Deno's node:http silently replays a request
    // whose reused keep-alive connection drops mid-body, bytes already sent included.
    const agent = isSizedStream(body) ? false : this.#agent(secure, host, tlsOptions);
    return await new Promise<HttpResponse>((resolve, reject) => {
      const mod = secure ? https : http;
      const req = mod.request({
        method: request.method,
        hostname: url.hostname.replace(/^\[|\]$/g, ""),
        port: url.port || (secure ? 443 : 80),
        path: url.pathname + url.search,
        headers,
        agent,
        ...tlsOptions,
      }, (res) => {
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) {
          if (Array.isArray(v)) v.forEach((x) => h.append(k, x));
          else if (v !== undefined) h.set(k, String(v));
        }
        const web = Readable.toWeb(res) as unknown as ReadableStream<Uint8Array>;
        resolve(wrapResponse(res.statusCode ?? 0, h, url.toString(), guardBody(web, url, host)));
      });
      // The timeout starts once the body is sent: a large upload may take longer than it.
      let timer: ReturnType<typeof setTimeout> | undefined;
      let answered = false;
      req.on("finish", () => {
        if (answered) return; // answered before the body was sent (e.g. a 416)
        timer = setTimeout(
          () => req.destroy(new Error("timed out waiting for the response")),
          this.#headersTimeout,
        );
      });
      req.on("response", () => {
        answered = true;
        clearTimeout(timer);
      });
      req.on("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
      // No progress for as long as the response timeout (a stalled upload) also fails.
      req.setTimeout(this.#headersTimeout, () => req.destroy(new Error("timed out: no progress")));
      request.signal?.addEventListener("abort", () => req.destroy(new Error("aborted")));
      if (isSizedStream(body)) pipeBody(body, req, reject);
      else req.end(body);
    });
  }

  async #client(host: HostSettings): Promise<Deno.HttpClient | undefined> {
    if (!host.caFile && !host.clientCert) return undefined;
    const key = `${host.caFile ?? ""}|${host.clientCert?.cert ?? ""}|${host.clientCert?.key ?? ""}`;
    let client = this.#clients.get(key);
    if (!client) {
      const options: Deno.CreateHttpClientOptions & { cert?: string; key?: string } = {};
      if (host.caFile) options.caCerts = [await this.#read(host.caFile, "CA certificate")];
      if (host.clientCert) {
        options.cert = await this.#read(host.clientCert.cert, "client certificate");
        options.key = await this.#read(host.clientCert.key, "client key");
      }
      client = Deno.createHttpClient(options as Deno.CreateHttpClientOptions);
      this.#clients.set(key, client);
    }
    return client;
  }

  async #nodeTls(host: HostSettings): Promise<https.AgentOptions> {
    const options: https.AgentOptions = { rejectUnauthorized: !host.skipVerify };
    if (host.caFile) {
      options.ca = [...tls.rootCertificates, await this.#read(host.caFile, "CA certificate")];
    }
    if (host.clientCert) {
      options.cert = await this.#read(host.clientCert.cert, "client certificate");
      options.key = await this.#read(host.clientCert.key, "client key");
    }
    return options;
  }

  #agent(secure: boolean, host: HostSettings, tlsOptions: https.AgentOptions): http.Agent {
    const key = `${secure}|${host.skipVerify}|${host.caFile ?? ""}|${host.clientCert?.cert ?? ""}`;
    let agent = this.#agents.get(key);
    if (!agent) {
      agent = secure
        ? new https.Agent({ keepAlive: true, ...tlsOptions })
        : new http.Agent({ keepAlive: true });
      this.#agents.set(key, agent);
    }
    return agent;
  }

  async #read(path: string, what: string): Promise<string> {
    let text = this.#files.get(path);
    if (text === undefined) {
      try {
        text = await Deno.readTextFile(path);
      } catch (e) {
        throw new KanikoError(`cannot read ${what} ${path}: ${(e as Error).message}`);
      }
      this.#files.set(path, text);
    }
    return text;
  }
}

function pipeBody(body: SizedStream, req: http.ClientRequest, reject: (e: unknown) => void) {
  const source = Readable.fromWeb(
    body.stream as unknown as import("node:stream/web").ReadableStream,
  );
  source.on("error", (e) => {
    req.destroy(e);
    reject(e);
  });
  source.pipe(req);
}

function isSizedStream(body: HttpRequest["body"]): body is SizedStream {
  return typeof body === "object" && body !== null && "stream" in body;
}

function bodyLength(body: Uint8Array | string): number {
  return typeof body === "string" ? new TextEncoder().encode(body).byteLength : body.byteLength;
}

function lowerKeys(headers: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) out[k.toLowerCase()] = v;
  return out;
}

/** Turns failures while reading a response body into one-line `NETWORK`/`TLS` errors. */
function guardBody(
  body: ReadableStream<Uint8Array>,
  url: URL,
  host: HostSettings,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      } catch (err) {
        controller.error(err instanceof KanikoError ? err : networkError(url, err, host));
      }
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
}

function wrapResponse(
  status: number,
  headers: Headers,
  url: string,
  body: ReadableStream<Uint8Array> | null,
): HttpResponse {
  return {
    status,
    headers,
    url,
    body,
    bytes: (limit = DEFAULT_BODY_LIMIT) => readLimited(body, limit, url),
    text: async (limit = DEFAULT_BODY_LIMIT) =>
      new TextDecoder().decode(await readLimited(body, limit, url)),
    discard: async () => {
      await body?.cancel().catch(() => {});
    },
  };
}

/** Reads a whole stream into memory, failing past `limit` bytes. */
export async function readLimited(
  body: ReadableStream<Uint8Array> | null,
  limit: number,
  what: string,
): Promise<Uint8Array> {
  if (!body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.byteLength;
    if (size > limit) {
      await body.cancel().catch(() => {});
      throw new KanikoError(`response from ${redactUrl(what)} is larger than ${limit} bytes`, {
        code: "SIZE_INVALID",
      });
    }
    chunks.push(chunk);
  }
  return concatBytes(chunks, size);
}

/** Turns a fetch / node:http failure into one clear line, coded NETWORK or TLS. */
export function networkError(url: URL, err: unknown, host: HostSettings): KanikoError {
  const text = errorText(err);
  const where = url.host;
  const lower = text.toLowerCase();
  if (
    /certificate|unknownissuer|self[- ]signed|x509|tls|ssl|handshake|notvalidforname/.test(lower)
  ) {
    // A fatal alert *received* is the server refusing us: usually a missing client certificate.
    const refusedUs = /received fatal alert: (badcertificate|certificaterequired)/.test(lower);
    const hint = refusedUs && !host.clientCert
      ? `if ${where} requires a client certificate, pass --registry-client-cert ${where}=CERT,KEY`
      : host.skipVerify
      ? undefined
      : `if ${where} uses a private CA, pass ` +
        `--registry-certificate ${where}=CA.pem (or --skip-tls-verify-registry ${where})`;
    return new KanikoError(`TLS connection to ${where} failed: ${shortCause(text)}`, {
      code: "TLS",
      hint,
      cause: err,
    });
  }
  let reason = shortCause(text);
  if (/refused|econnrefused/.test(lower)) reason = "connection refused";
  else if (/reset|econnreset|broken pipe|epipe/.test(lower)) reason = "connection reset";
  else if (/dns|getaddrinfo|name or service|enotfound|failed to lookup/.test(lower)) {
    reason = "host name not found";
  } else if (/timed out|timeout/.test(lower)) reason = "timed out";
  // A TLS server that wants a client certificate just closes the connection during the handshake.
  const hint = url.protocol === "https:" && !host.clientCert && /closed|reset/.test(reason)
    ? `if ${where} requires a client certificate, pass --registry-client-cert ${where}=CERT,KEY`
    : undefined;
  return new KanikoError(`cannot reach ${where}: ${reason}`, { code: "NETWORK", cause: err, hint });
}

function errorText(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let i = 0; e && i < 5; i++) {
    if (e instanceof Error) {
      parts.push(e.message);
      const code = (e as { code?: string }).code;
      if (code) parts.push(code);
      e = e.cause;
    } else {
      parts.push(String(e));
      break;
    }
  }
  return parts.join(": ");
}

function shortCause(text: string): string {
  const cleaned = text.replace(/\bfetch failed:?\s*/gi, "")
    .replace(
      /error sending request (?:from \S+ )?for (?:url )?\(?[^\s)]+\)?(?: \([^)]*\))?:?\s*/gi,
      "",
    )
    .replace(/client error \(\w+\):?\s*/gi, "").replace(/\s+/g, " ").trim();
  return cleaned.length > 200 ? cleaned.slice(0, 197) + "..." : cleaned;
}

/** Removes credentials and query strings (upload tokens) from a URL for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = "";
    u.password = "";
    u.search = "";
    return u.toString();
  } catch {
    return url;
  }
}
