/**
 * A client for one registry host speaking the OCI distribution spec v1.1: scheme discovery,
 * authentication (with refresh on 401), retries, `Warning` headers, manifests and tag listing.
 * Blob transfers live in `blobs.ts`.
 * @module
 */
import { KanikoError } from "../errors.ts";
import { log } from "../log.ts";
import { digestOf, parseDigest, verifyBytes } from "../oci/digest.ts";
import type { RawManifest } from "../oci/content.ts";
import { MANIFEST_ACCEPT } from "../oci/media_types.ts";
import { mediaTypeFromContentType, parseManifest } from "../oci/schemas.ts";
import type { Descriptor } from "../oci/schemas.ts";
import { Authenticator } from "./auth.ts";
import { responseError } from "./errors.ts";
import type { HttpRequest, HttpResponse, HttpTransport } from "./http_types.ts";
import {
  type Direction,
  type HostSettings,
  hostSettings,
  type RegistryOptions,
} from "./options.ts";
import { apiHost } from "./reference.ts";
import { REAUTH, RetryableError, withRetry } from "./retry.ts";
import { DEFAULT_BODY_LIMIT } from "./transport.ts";

/** Largest manifest we read or write (distribution-spec: at least 4 MiB must work). */
export const MANIFEST_LIMIT = 4 * 1024 * 1024;

/** The access a request needs on its repositories. */
export type Access = "pull" | "push";

/** One request to the registry API. */
export interface ApiRequest {
  method: string;
  /** Path below the registry root (`/v2/...`) or an absolute URL (upload locations). */
  path: string;
  /** Repositories the request touches; the first is the target, others are mount sources (pull). */
  repositories: string[];
  access: Access;
  headers?: Record<string, string>;
  body?: HttpRequest["body"];
  /** Statuses that count as success; anything else becomes an error. */
  expect: number[];
  /** Describes the attempt for error messages. */
  what: string;
  /** Do not retry. Requests with streamed bodies are never retried here (they cannot be replayed). */
  noRetry?: boolean;
  signal?: AbortSignal;
}

/** Options for {@link RegistryClient}. */
export interface RegistryClientOptions {
  transport: HttpTransport;
  options: RegistryOptions;
  direction: Direction;
}

/** A client for one registry (`host[:port]`, as written in references; `docker.io` allowed). */
export class RegistryClient {
  /** The registry as written in references. */
  readonly registry: string;
  /** The host the API is served from. */
  readonly host: string;
  /** TLS and scheme settings of the host. */
  readonly settings: HostSettings;
  readonly transport: HttpTransport;
  readonly options: RegistryOptions;
  readonly direction: Direction;
  #base?: Promise<string>;
  #auth: Authenticator;

  constructor(registry: string, options: RegistryClientOptions) {
    this.registry = registry;
    this.host = apiHost(registry);
    this.transport = options.transport;
    this.options = options.options;
    this.direction = options.direction;
    this.settings = hostSettings(options.options, this.registry, options.direction);
    this.#auth = new Authenticator(registry, {
      transport: this.transport,
      options: this.options,
      direction: this.direction,
    });
  }

  /** The base URL (`https://host` or `http://host`), found by pinging `/v2/` once. */
  baseUrl(): Promise<string> {
    this.#base ??= this.#discover();
    this.#base.catch(() => this.#base = undefined);
    return this.#base;
  }

  async #discover(): Promise<string> {
    const https = `https://${this.host}`;
    try {
      const res = await this.#ping(https);
      await this.#auth.observe(res);
      return https;
    } catch (err) {
      if (!this.settings.allowHttp || !isConnectionError(err)) throw err;
      const http = `http://${this.host}`;
      const res = await this.#ping(http).catch(() => undefined);
      if (!res || (res.status !== 200 && res.status !== 401)) {
        await res?.discard();
        throw err;
      }
      log.debug(`${this.registry}: using plain HTTP`);
      await this.#auth.observe(res);
      return http;
    }
  }

  async #ping(base: string): Promise<HttpResponse> {
    const res = await this.transport.send({
      method: "GET",
      url: `${base}/v2/`,
      host: this.settings,
    });
    if (res.status !== 200 && res.status !== 401) {
      const err = await responseError(res, `checking the registry API at ${base}/v2/`);
      throw err;
    }
    return res;
  }

  /** Sends an API request with authentication, refresh on 401, retries and warnings. */
  async request(req: ApiRequest): Promise<HttpResponse> {
    // A streamed body is consumed by the first attempt: nothing here may replay it (not even the
    // free replay after REAUTH, which is the caller's to do with a fresh stream).
    if (isStreamBody(req.body)) return await this.#attempt(req);
    const retries = req.noRetry ? 0 : this.#retries();
    return await withRetry(() => this.#attempt(req), {
      retries,
      initialDelay: this.options.pushRetryInitialDelay,
      maxDelay: this.options.pushRetryMaxDelay,
      signal: req.signal,
      onRetry: (err, n, ms) => log.info(`retrying (${n}/${retries}) in ${ms} ms: ${err.message}`),
    });
  }

  /** Retries configured for this client's direction. */
  #retries(): number {
    return this.direction === "push" ? this.options.pushRetry : this.options.imageDownloadRetry;
  }

  /** Retry settings for callers that retry whole operations (uploads). */
  retryOptions(): { retries: number; initialDelay: number; maxDelay: number } {
    return {
      retries: this.#retries(),
      initialDelay: this.options.pushRetryInitialDelay,
      maxDelay: this.options.pushRetryMaxDelay,
    };
  }

  async #attempt(req: ApiRequest): Promise<HttpResponse> {
    const base = await this.baseUrl();
    const url = /^https?:\/\//.test(req.path) ? req.path : base + req.path;
    const scopes = scopesFor(req);
    for (let tries = 0;; tries++) {
      const authorization = await this.#auth.authorize(scopes);
      const headers = { ...req.headers };
      if (authorization) headers["authorization"] = authorization;
      const res = await this.transport.send({
        method: req.method,
        url,
        headers,
        body: req.body,
        signal: req.signal,
        host: this.settings,
      });
      this.#warnings(res);
      if (res.status === 401 && tries === 0 && await this.#auth.refresh(res, scopes)) {
        await res.discard();
        if (!isStreamBody(req.body)) continue;
        throw new RetryableError(`${req.what}: the registry refused the credentials mid-request`, {
          code: REAUTH,
        });
      }
      if (req.expect.includes(res.status)) return res;
      if (res.status === 401 && tries > 0) {
        await res.discard();
        throw this.#auth.unauthorizedError(scopes);
      }
      throw await responseError(res, req.what);
    }
  }

  #warnings(res: HttpResponse): void {
    const value = res.headers.get("warning");
    if (!value) return;
    for (const m of value.matchAll(/\d{3}\s+\S+\s+"((?:[^"\\]|\\.)*)"/g)) {
      const text = m[1].replace(/\\(.)/g, "$1");
      log.warnOnce(`${this.registry}|${text}`, `${this.registry}: ${text}`);
    }
  }

  /** GETs a manifest by tag or digest, verifying its digest and enforcing the size limit. */
  async getManifest(
    repository: string,
    ref: string,
    accept = MANIFEST_ACCEPT,
  ): Promise<RawManifest> {
    const what = `fetching manifest ${this.#name(repository, ref)}`;
    const res = await this.request({
      method: "GET",
      path: `/v2/${repository}/manifests/${ref}`,
      repositories: [repository],
      access: "pull",
      headers: { accept: accept.join(", ") },
      expect: [200],
      what,
    });
    const length = Number(res.headers.get("content-length") ?? "-1");
    if (length > MANIFEST_LIMIT) {
      await res.discard();
      throw new KanikoError(`${what}: manifest is ${length} bytes, larger than the 4 MiB limit`);
    }
    const bytes = await res.bytes(MANIFEST_LIMIT);
    const digest = this.#checkDigest(bytes, ref, res.headers.get("docker-content-digest"), what);
    const parsed = parseManifest(bytes, res.headers.get("content-type") ?? undefined, what);
    return { bytes, digest, mediaType: parsed.mediaType };
  }

  #checkDigest(bytes: Uint8Array, ref: string, header: string | null, what: string): string {
    if (ref.includes(":")) {
      verifyBytes(bytes, ref, what);
      return ref;
    }
    if (header) {
      verifyBytes(bytes, header, what);
      return header;
    }
    return digestOf(bytes);
  }

  /** HEADs a manifest: its descriptor, or undefined when absent. */
  async headManifest(repository: string, ref: string): Promise<Descriptor | undefined> {
    const res = await this.request({
      method: "HEAD",
      path: `/v2/${repository}/manifests/${ref}`,
      repositories: [repository],
      access: "pull",
      headers: { accept: MANIFEST_ACCEPT.join(", ") },
      expect: [200, 404],
      what: `checking manifest ${this.#name(repository, ref)}`,
    });
    await res.discard();
    if (res.status === 404) return undefined;
    const digest = res.headers.get("docker-content-digest") ?? (ref.includes(":") ? ref : "");
    if (!digest) return undefined;
    parseDigest(digest);
    return {
      mediaType: mediaTypeFromContentType(res.headers.get("content-type")) ?? "",
      digest,
      size: Number(res.headers.get("content-length") ?? "0"),
    };
  }

  /** PUTs manifest bytes under a tag or digest; checks the digest the registry reports. */
  async putManifest(repository: string, ref: string, manifest: RawManifest): Promise<void> {
    if (manifest.bytes.byteLength > MANIFEST_LIMIT) {
      throw new KanikoError(
        `manifest ${manifest.digest} is ${manifest.bytes.byteLength} bytes, larger than 4 MiB`,
      );
    }
    const what = `pushing manifest ${this.#name(repository, ref)}`;
    const res = await this.request({
      method: "PUT",
      path: `/v2/${repository}/manifests/${ref}`,
      repositories: [repository],
      access: "push",
      headers: { "content-type": manifest.mediaType },
      body: manifest.bytes,
      expect: [200, 201, 202],
      what,
    });
    await res.discard();
    const reported = res.headers.get("docker-content-digest");
    if (reported && reported !== manifest.digest) {
      throw new KanikoError(
        `${what}: the registry stored digest ${reported}, expected ${manifest.digest}`,
      );
    }
  }

  /** Lists every tag of a repository, following `Link` pagination. */
  async listTags(repository: string, pageSize = 1000): Promise<string[]> {
    const tags: string[] = [];
    let path: string | undefined = `/v2/${repository}/tags/list?n=${pageSize}`;
    for (let page = 0; path && page < 100_000; page++) {
      const res = await this.request({
        method: "GET",
        path,
        repositories: [repository],
        access: "pull",
        expect: [200],
        what: `listing tags of ${this.registry}/${repository}`,
      });
      const text = await res.text(DEFAULT_BODY_LIMIT * 4);
      let body: { tags?: unknown };
      try {
        body = JSON.parse(text) ?? {};
      } catch {
        throw new KanikoError(
          `listing tags of ${this.registry}/${repository} failed: the answer is not JSON`,
          { hint: "check that the registry address points at a registry API" },
        );
      }
      const pageTags = Array.isArray(body.tags)
        ? body.tags.filter((t) => typeof t === "string")
        : [];
      tags.push(...pageTags as string[]);
      path = nextLink(res.headers.get("link"), await this.baseUrl());
      if (!path && pageTags.length === pageSize) {
        path = `/v2/${repository}/tags/list?n=${pageSize}&last=${
          encodeURIComponent(tags[tags.length - 1])
        }`;
      }
    }
    return tags;
  }

  #name(repository: string, ref: string): string {
    return `${this.registry}/${repository}${ref.includes(":") ? "@" : ":"}${ref}`;
  }
}

function scopesFor(req: ApiRequest): string[] {
  const [target, ...others] = req.repositories;
  const scopes = [`repository:${target}:${req.access === "push" ? "pull,push" : "pull"}`];
  for (const other of others) scopes.push(`repository:${other}:pull`);
  return scopes;
}

function isStreamBody(body: ApiRequest["body"]): boolean {
  return typeof body === "object" && body !== null && "stream" in body;
}

function isConnectionError(err: unknown): boolean {
  return err instanceof KanikoError && (err.code === "NETWORK" || err.code === "TLS");
}

/** The next page from an RFC 5988 `Link` header with `rel="next"`, as a path or URL. */
export function nextLink(link: string | null, base: string): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(",")) {
    const m = part.match(/<([^>]*)>\s*;\s*rel="?next"?/i);
    if (m) return new URL(m[1], base).toString();
  }
  return undefined;
}
