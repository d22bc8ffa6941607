/**
 * A small Kubernetes API client on plain `fetch`: TLS through `Deno.createHttpClient` (the
 * cluster's CA, a client certificate from the kubeconfig or a credential plugin), `node:https`
 * only for `insecure-skip-tls-verify` (fetch cannot skip verification), bearer tokens from
 * {@link CredentialProvider} (refreshed once on a 401), JSON bodies validated by the caller's zod
 * schema, and streamed bodies for watches and logs. Failures are one line ({@link apiError}).
 * @module
 */
import https from "node:https";
import { Readable } from "node:stream";
import type { z } from "zod";
import { KanikoError } from "../../lib/errors.ts";
import { log } from "../../lib/log.ts";
import { VERSION } from "../../lib/version.ts";
import { CredentialProvider, type RequestCredentials } from "./auth.ts";
import type { KubeConfig } from "./config.ts";
import { apiError, describeOperation, type Operation } from "./errors.ts";

/** Options of one request. */
export interface RequestOptions {
  method?: string;
  /** Query parameters (values already strings). */
  query?: Record<string, string | undefined>;
  /** JSON body. */
  body?: unknown;
  signal?: AbortSignal;
}

/** The client of one API server. */
export class KubeClient {
  readonly config: KubeConfig;
  readonly #creds: CredentialProvider;
  #http?: { key: string; client: Deno.HttpClient };

  constructor(config: KubeConfig) {
    this.config = config;
    this.#creds = new CredentialProvider(config.auth);
  }

  /** The namespace Jobs go to. */
  get namespace(): string {
    return this.config.namespace;
  }

  /** Sends a request and parses its JSON answer with `schema`. */
  async json<T extends z.ZodType>(
    path: string,
    op: Operation,
    schema: T,
    options: RequestOptions = {},
  ): Promise<z.infer<T>> {
    const res = await this.request(path, op, options);
    const text = await res.text();
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      throw new KanikoError(`${this.#what(op)}: the answer is not JSON`);
    }
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new KanikoError(
        `${this.#what(op)}: unexpected answer: ${issue.path.join(".")}: ${issue.message}`,
      );
    }
    return parsed.data;
  }

  /** Sends a request; a non-2xx answer throws. The caller reads (or cancels) the body. */
  async request(path: string, op: Operation, options: RequestOptions = {}): Promise<Response> {
    for (let attempt = 0;; attempt++) {
      const creds = await this.#creds.get();
      const res = await this.#send(path, creds, options, op);
      if (res.ok) return res;
      const body = await res.text().catch(() => "");
      if (res.status === 401 && attempt === 0 && this.#creds.refreshable) {
        log.debug("Kubernetes API answered 401; refreshing credentials", { path });
        this.#creds.invalidate();
        continue;
      }
      throw apiError(res.status, body, op, this.config.server);
    }
  }

  /** Releases connections. */
  close(): void {
    this.#http?.client.close();
    this.#http = undefined;
  }

  #what(op: Operation): string {
    return `Kubernetes API ${this.config.server}: ${describeOperation(op)}`;
  }

  async #send(
    path: string,
    creds: RequestCredentials,
    options: RequestOptions,
    op: Operation,
  ): Promise<Response> {
    const url = new URL(this.config.server + path);
    for (const [k, v] of Object.entries(options.query ?? {})) {
      if (v !== undefined) url.searchParams.set(k, v);
    }
    const headers: Record<string, string> = {
      accept: "application/json",
      "user-agent": `kaniko-deno/${VERSION}`,
    };
    if (creds.token) headers.authorization = `Bearer ${creds.token}`;
    let body: string | undefined;
    if (options.body !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(options.body);
    }
    const init = { method: options.method ?? "GET", headers, body, signal: options.signal };
    try {
      if (this.config.tls.insecure && url.protocol === "https:") {
        const cert = creds.cert ?? this.config.tls.cert;
        return await nodeFetch(url, init, cert, creds.key ?? this.config.tls.key);
      }
      return await fetch(url, { ...init, client: this.#client(creds) });
    } catch (e) {
      if (options.signal?.aborted) throw options.signal.reason ?? e;
      throw new KanikoError(`${this.#what(op)}: cannot connect: ${(e as Error).message}`, {
        hint: `check the server address in the ${this.config.source} and the network`,
        cause: e,
      });
    }
  }

  #client(creds: RequestCredentials): Deno.HttpClient | undefined {
    const tls = this.config.tls;
    const cert = creds.cert ?? tls.cert;
    const key = creds.key ?? tls.key;
    if (!tls.caCerts && !cert) return undefined;
    const id = `${cert ?? ""}|${key ?? ""}`;
    if (this.#http?.key === id) return this.#http.client;
    this.#http?.client.close();
    const options: Deno.CreateHttpClientOptions & { cert?: string; key?: string } = {};
    if (tls.caCerts) options.caCerts = tls.caCerts;
    if (cert && key) Object.assign(options, { cert, key });
    const client = Deno.createHttpClient(options as Deno.CreateHttpClientOptions);
    this.#http = { key: id, client };
    return client;
  }
}

/** `fetch` over `node:https` without certificate verification (`insecure-skip-tls-verify`). */
function nodeFetch(
  url: URL,
  init: { method: string; headers: Record<string, string>; body?: string; signal?: AbortSignal },
  cert: string | undefined,
  key: string | undefined,
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, {
      method: init.method,
      headers: init.headers,
      rejectUnauthorized: false,
      ...(cert && key ? { cert, key } : {}),
    }, (res) => {
      const headers = new Headers();
      for (const [k, v] of Object.entries(res.headers)) {
        if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(", ") : v);
      }
      const stream = Readable.toWeb(res) as unknown as ReadableStream<Uint8Array>;
      const status = res.statusCode ?? 500;
      const empty = status === 204 || status === 304;
      if (empty) res.resume();
      resolve(new Response(empty ? null : stream, { status, headers }));
    });
    req.on("error", reject);
    init.signal?.addEventListener("abort", () => req.destroy(new Error("aborted")), {
      once: true,
    });
    req.end(init.body);
  });
}
