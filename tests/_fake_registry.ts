/**
 * A fake OCI distribution registry for tests: a hono app on `Deno.serve` (port 0, 127.0.0.1)
 * implementing the distribution API closely enough for the registry client — `/v2/`, manifests
 * (GET/HEAD/PUT, exact bytes, `Docker-Content-Digest`), blobs (HEAD/GET with `Range`), uploads
 * (POST, PATCH with `Content-Range` and 416, upload status GET 204 + `Range`, PUT `?digest=`,
 * single-POST, cross-repository mount with and without `from`), `tags/list` with `n`/`last` and
 * `Link` pagination, `Warning` headers, optional Basic or Bearer auth (with a token endpoint).
 *
 * Faults are injected with {@link FakeRegistry.intercept} (answer matching requests yourself, a
 * number of times), {@link FakeRegistry.dropConnection} (cut a request's connection after some body
 * bytes, through a TCP proxy started with `{proxy: true}`), and options such as `blobRedirect`.
 * Every request is logged in {@link FakeRegistry.requests} for assertions.
 *
 * ```ts
 * const reg = await FakeRegistry.start();
 * const img = makeImage({ layers: ["hello"] });
 * reg.seedImage("library/hello", img, "latest");
 * // … talk to reg.host …
 * await reg.close();
 * ```
 * @module
 */
import { type Context, Hono } from "hono";
import { concatBytes } from "../lib/bytes.ts";
import { canonicalJson } from "../lib/oci/canonical_json.ts";
import type { RawManifest } from "../lib/oci/content.ts";
import { digestOf } from "../lib/oci/digest.ts";
import { OCI } from "../lib/oci/media_types.ts";
import type { Descriptor, Platform } from "../lib/oci/schemas.ts";

/** Authentication a fake registry demands. */
export interface FakeAuth {
  kind: "basic" | "bearer";
  username: string;
  password: string;
}

/** Options of {@link FakeRegistry.start}. */
export interface FakeRegistryOptions {
  /** Require credentials (Basic, or Bearer tokens from `/token` on the same server). */
  auth?: FakeAuth;
  /** Send `Link` headers on tag pages (default true); without, clients must use `last`. */
  linkHeader?: boolean;
  /** Mount a blob when `mount=` comes without `from=` (default false: 202, a new session). */
  anonymousMount?: boolean;
  /** A `Warning` header value added to every response, e.g. `299 - "deprecated"`. */
  warning?: string;
  /** Serve HTTPS with this PEM certificate and key. */
  tls?: { cert: string; key: string };
  /** Put a TCP proxy in front (needed by {@link FakeRegistry.dropConnection}). */
  proxy?: boolean;
  /** Refuse manifests whose blobs or children are missing (default true). */
  validateManifests?: boolean;
  /** Largest manifest accepted by PUT (default 4 MiB); larger ones get 413. */
  manifestLimit?: number;
  /** Redirect blob GETs to `${blobRedirect}/cdn/<digest>` (another fake serves `/cdn/`). */
  blobRedirect?: string;
  /** Answer `Range` blob GETs with 200 and the whole blob (default false: 206). */
  ignoreRange?: boolean;
}

/** One request as the fake saw it. */
export interface LoggedRequest {
  method: string;
  /** Path without the query. */
  path: string;
  query: URLSearchParams;
  /** Lower-case header names. */
  headers: Record<string, string>;
  /** Status the fake answered with (0 until answered, or for dropped connections). */
  status: number;
}

/** Matches requests for {@link FakeRegistry.intercept}. */
export interface RequestMatch {
  method?: string;
  /** Substring of, or pattern for, the path (without query). */
  path?: string | RegExp;
  /** Extra predicate. */
  when?: (req: Request, url: URL) => boolean;
}

interface Interceptor extends RequestMatch {
  respond: (req: Request, url: URL) => Response | Promise<Response>;
  times: number;
}

interface Upload {
  repo: string;
  chunks: Uint8Array[];
  size: number;
}

interface StoredManifest {
  bytes: Uint8Array;
  mediaType: string;
}

interface DropRule extends RequestMatch {
  afterBodyBytes: number;
  skip: number;
}

const encoder = new TextEncoder();

/** A running fake registry. Start with {@link FakeRegistry.start}; stop with {@link close}. */
export class FakeRegistry {
  /** `127.0.0.1:PORT` (the proxy's port when a proxy is used). */
  host = "";
  /** `http://host` or `https://host`. */
  url = "";
  /** Every request, in arrival order. */
  readonly requests: LoggedRequest[] = [];
  /** Authorization headers seen on `/cdn/` requests (for cross-host redirect checks). */
  readonly cdnAuthorizations: (string | null)[] = [];
  readonly options: FakeRegistryOptions;
  /** Blob contents by digest; repository membership is {@link repoBlobs}. */
  readonly blobs = new Map<string, Uint8Array>();
  readonly repoBlobs = new Map<string, Set<string>>();
  readonly manifests = new Map<string, Map<string, StoredManifest>>();
  readonly tagsOf = new Map<string, Map<string, string>>();
  readonly uploads = new Map<string, Upload>();
  #interceptors: Interceptor[] = [];
  #drops: DropRule[] = [];
  #tokens = new Map<string, string[]>();
  #server?: Deno.HttpServer<Deno.NetAddr>;
  #proxy?: TcpProxy;
  #nextId = 0;

  private constructor(options: FakeRegistryOptions) {
    this.options = options;
  }

  /** Starts a fake registry on 127.0.0.1, port 0. */
  static start(options: FakeRegistryOptions = {}): Promise<FakeRegistry> {
    const reg = new FakeRegistry(options);
    const app = reg.#app();
    const serveOptions = {
      port: 0,
      hostname: "127.0.0.1",
      onListen: () => {},
      onError: () => new Response("internal error", { status: 500 }),
    };
    reg.#server = options.tls
      ? Deno.serve({ ...serveOptions, cert: options.tls.cert, key: options.tls.key }, app.fetch)
      : Deno.serve(serveOptions, app.fetch);
    let port = reg.#server.addr.port;
    if (options.proxy) {
      reg.#proxy = new TcpProxy(port, reg.#drops);
      port = reg.#proxy.port;
    }
    reg.host = `127.0.0.1:${port}`;
    reg.url = `${options.tls ? "https" : "http"}://${reg.host}`;
    return Promise.resolve(reg);
  }

  /** Stops the server (and proxy), closing connections. */
  async close(): Promise<void> {
    this.#proxy?.close();
    await this.#server?.shutdown();
    await this.#proxy?.done();
  }

  /** Answers the next `times` requests matching `match` with `respond`. */
  intercept(
    match: RequestMatch,
    respond: (req: Request, url: URL) => Response | Promise<Response>,
    times = 1,
  ): void {
    this.#interceptors.push({ ...match, respond, times });
  }

  /**
   * Cuts the connection of the next request matching `match` (skipping `skip` matches first) after
   * `afterBodyBytes` of its body reached the registry. Needs `{proxy: true}`.
   */
  dropConnection(match: RequestMatch & { afterBodyBytes: number; skip?: number }): void {
    if (!this.#proxy) throw new Error("dropConnection needs FakeRegistry.start({ proxy: true })");
    this.#drops.push({ ...match, skip: match.skip ?? 0 });
  }

  /** Requests matching `method` and a path substring or pattern. */
  find(method: string, path?: string | RegExp): LoggedRequest[] {
    return this.requests.filter((r) => r.method === method && matchPath(r.path, path));
  }

  /** Forgets the request log. */
  clearLog(): void {
    this.requests.length = 0;
    this.cdnAuthorizations.length = 0;
  }

  /** Stores a blob in `repo`; returns its descriptor. */
  putBlob(repo: string, bytes: Uint8Array, mediaType = "application/octet-stream"): Descriptor {
    const digest = digestOf(bytes);
    this.blobs.set(digest, bytes);
    this.#repoBlobs(repo).add(digest);
    return { mediaType, digest, size: bytes.byteLength };
  }

  /** True when `repo` holds the blob. */
  hasBlob(repo: string, digest: string): boolean {
    return this.repoBlobs.get(repo)?.has(digest) ?? false;
  }

  /** Stores manifest bytes in `repo` by digest and, with `tag`, under the tag. */
  putManifest(repo: string, manifest: RawManifest, tag?: string): void {
    this.#repoManifests(repo).set(manifest.digest, {
      bytes: manifest.bytes,
      mediaType: manifest.mediaType,
    });
    if (tag) this.#repoTags(repo).set(tag, manifest.digest);
  }

  /** The manifest stored in `repo` under a tag or digest. */
  getManifest(repo: string, ref: string): StoredManifest | undefined {
    const digest = ref.includes(":") ? ref : this.tagsOf.get(repo)?.get(ref);
    return digest ? this.manifests.get(repo)?.get(digest) : undefined;
  }

  /** Stores an image (blobs, manifest) or an index (children, their blobs, the index). */
  seedImage(repo: string, image: FakeImage | FakeIndex, tag?: string): void {
    if ("children" in image) {
      for (const child of image.children) this.seedImage(repo, child);
    } else {
      this.putBlob(repo, image.configBytes, image.config.mediaType);
      image.layerBytes.forEach((b, i) => this.putBlob(repo, b, image.layers[i].mediaType));
    }
    this.putManifest(repo, image.manifest, tag);
  }

  #repoBlobs(repo: string): Set<string> {
    let set = this.repoBlobs.get(repo);
    if (!set) this.repoBlobs.set(repo, set = new Set());
    return set;
  }

  #repoManifests(repo: string): Map<string, StoredManifest> {
    let map = this.manifests.get(repo);
    if (!map) this.manifests.set(repo, map = new Map());
    return map;
  }

  #repoTags(repo: string): Map<string, string> {
    let map = this.tagsOf.get(repo);
    if (!map) this.tagsOf.set(repo, map = new Map());
    return map;
  }

  #knownRepo(repo: string): boolean {
    return this.repoBlobs.has(repo) || this.manifests.has(repo);
  }

  #app(): Hono {
    const app = new Hono();
    app.use("*", async (c, next) => {
      const url = new URL(c.req.url);
      const entry: LoggedRequest = {
        method: c.req.method,
        path: url.pathname,
        query: url.searchParams,
        headers: Object.fromEntries(c.req.raw.headers),
        status: 0,
      };
      this.requests.push(entry);
      const hook = this.#interceptors.find((h) =>
        h.times > 0 && (!h.method || h.method === c.req.method) &&
        matchPath(url.pathname, h.path) &&
        (!h.when || h.when(c.req.raw, url))
      );
      if (hook) {
        hook.times--;
        c.res = await hook.respond(c.req.raw, url);
      } else {
        const denied = url.pathname.startsWith("/v2") ? this.#authorize(c, url) : undefined;
        if (denied) c.res = denied;
        else await next();
      }
      if (this.options.warning) c.res.headers.append("warning", this.options.warning);
      entry.status = c.res.status;
    });
    app.get("/token", (c) => this.#token(c));
    app.get("/cdn/:digest", (c) => {
      this.cdnAuthorizations.push(c.req.header("authorization") ?? null);
      const bytes = this.blobs.get(c.req.param("digest"));
      return bytes ? new Response(bodyOf(bytes)) : c.text("no such blob", 404);
    });
    app.get("/v2/", (c) => {
      c.header("docker-distribution-api-version", "registry/2.0");
      return c.json({});
    });
    app.on(["GET", "HEAD"], "/v2/:name{.+}/tags/list", (c) => this.#tags(c));
    app.on(["GET", "HEAD"], "/v2/:name{.+}/manifests/:ref", (c) => this.#getManifest(c));
    app.put("/v2/:name{.+}/manifests/:ref", (c) => this.#putManifest(c));
    app.post("/v2/:name{.+}/blobs/uploads/", (c) => this.#startUpload(c));
    app.get("/v2/:name{.+}/blobs/uploads/:id", (c) => this.#uploadStatus(c));
    app.patch("/v2/:name{.+}/blobs/uploads/:id", (c) => this.#patch(c));
    app.put("/v2/:name{.+}/blobs/uploads/:id", (c) => this.#finishUpload(c));
    app.delete("/v2/:name{.+}/blobs/uploads/:id", (c) => {
      this.uploads.delete(c.req.param("id"));
      return c.body(null, 204);
    });
    app.on(["GET", "HEAD"], "/v2/:name{.+}/blobs/:digest", (c) => this.#getBlob(c));
    app.all("*", () => ociError(404, "UNSUPPORTED", "not implemented by the fake registry"));
    return app;
  }

  /** undefined when allowed; else the 401. */
  #authorize(c: Context, url: URL): Response | undefined {
    const auth = this.options.auth;
    if (!auth) return undefined;
    const given = c.req.header("authorization") ?? "";
    if (auth.kind === "basic") {
      if (given === `Basic ${btoa(`${auth.username}:${auth.password}`)}`) return undefined;
      return ociError(401, "UNAUTHORIZED", "authentication required", {
        "www-authenticate": 'Basic realm="fake"',
      });
    }
    const m = url.pathname.match(/^\/v2\/(.+)\/(?:manifests|blobs|tags)\//);
    const repo = m?.[1];
    const action = ["GET", "HEAD"].includes(c.req.method) ? "pull" : "push";
    const scopes = given.startsWith("Bearer ") ? this.#tokens.get(given.slice(7)) : undefined;
    if (scopes && (!repo || scopes.some((s) => grants(s, repo, action)))) return undefined;
    const scope = repo
      ? `,scope="repository:${repo}:${action === "push" ? "pull,push" : "pull"}"`
      : "";
    return ociError(401, "UNAUTHORIZED", "authentication required", {
      "www-authenticate": `Bearer realm="${this.url}/token",service="fake"${scope}`,
    });
  }

  #token(c: Context): Response {
    const auth = this.options.auth;
    const given = c.req.header("authorization");
    if (auth && given !== `Basic ${btoa(`${auth.username}:${auth.password}`)}`) {
      return c.json({ details: "incorrect username or password" }, 401);
    }
    const token = `tok-${++this.#nextId}`;
    this.#tokens.set(token, new URL(c.req.url).searchParams.getAll("scope"));
    return c.json({ token, expires_in: 300 });
  }

  /** Forgets every token issued (clients then get 401 and must re-authenticate). */
  revokeTokens(): void {
    this.#tokens.clear();
  }

  #tags(c: Context): Response {
    const repo = c.req.param("name")!;
    if (!this.#knownRepo(repo)) return ociError(404, "NAME_UNKNOWN", `repository ${repo} unknown`);
    const all = [...(this.tagsOf.get(repo)?.keys() ?? [])].sort();
    const q = new URL(c.req.url).searchParams;
    const last = q.get("last");
    let list = last ? all.filter((t) => t > last) : all;
    const n = q.has("n") ? Number(q.get("n")) : undefined;
    if (n !== undefined) {
      const more = list.length > n;
      list = list.slice(0, n);
      if (more && n > 0 && this.options.linkHeader !== false) {
        c.header(
          "link",
          `</v2/${repo}/tags/list?last=${encodeURIComponent(list[list.length - 1])}&n=${n}>; ` +
            `rel="next"`,
        );
      }
    }
    return c.json({ name: repo, tags: list });
  }

  #getManifest(c: Context): Response {
    const repo = c.req.param("name")!;
    const ref = c.req.param("ref")!;
    const stored = this.getManifest(repo, ref);
    if (!stored) return ociError(404, "MANIFEST_UNKNOWN", `manifest ${ref} unknown`);
    const headers = {
      "content-type": stored.mediaType,
      "docker-content-digest": digestOf(stored.bytes),
      "content-length": String(stored.bytes.byteLength),
    };
    if (c.req.method === "HEAD") return new Response(null, { status: 200, headers });
    return new Response(bodyOf(stored.bytes), { status: 200, headers });
  }

  async #putManifest(c: Context): Promise<Response> {
    const repo = c.req.param("name")!;
    const ref = c.req.param("ref")!;
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    const limit = this.options.manifestLimit ?? 4 * 1024 * 1024;
    if (bytes.byteLength > limit) return ociError(413, "SIZE_INVALID", "manifest too large");
    const mediaType = c.req.header("content-type") ?? "";
    let parsed: {
      mediaType?: string;
      config?: Descriptor;
      layers?: Descriptor[];
      manifests?: Descriptor[];
    };
    try {
      parsed = JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      return ociError(400, "MANIFEST_INVALID", "not JSON");
    }
    if (parsed.mediaType && parsed.mediaType !== mediaType) {
      return ociError(
        400,
        "MANIFEST_INVALID",
        `content type ${mediaType} is not ${parsed.mediaType}`,
      );
    }
    const digest = digestOf(bytes);
    if (ref.includes(":") && ref !== digest) {
      return ociError(400, "DIGEST_INVALID", `digest ${ref} does not match ${digest}`);
    }
    if (this.options.validateManifests !== false) {
      for (const d of [...(parsed.config ? [parsed.config] : []), ...(parsed.layers ?? [])]) {
        if (!this.hasBlob(repo, d.digest) && !d.urls?.length) {
          return ociError(400, "MANIFEST_BLOB_UNKNOWN", `blob ${d.digest} unknown`);
        }
      }
      for (const d of parsed.manifests ?? []) {
        if (!this.manifests.get(repo)?.has(d.digest)) {
          return ociError(400, "MANIFEST_BLOB_UNKNOWN", `manifest ${d.digest} unknown`);
        }
      }
    }
    this.putManifest(repo, { bytes, mediaType, digest }, ref.includes(":") ? undefined : ref);
    return new Response(null, {
      status: 201,
      headers: { location: `/v2/${repo}/manifests/${digest}`, "docker-content-digest": digest },
    });
  }

  #newUpload(repo: string): Response {
    const id = `up-${++this.#nextId}`;
    this.uploads.set(id, { repo, chunks: [], size: 0 });
    return new Response(null, {
      status: 202,
      headers: {
        location: `/v2/${repo}/blobs/uploads/${id}?_state=s${id}`,
        range: "0-0",
        "docker-upload-uuid": id,
        "oci-chunk-min-length": "1",
      },
    });
  }

  async #startUpload(c: Context): Promise<Response> {
    const repo = c.req.param("name")!;
    const q = new URL(c.req.url).searchParams;
    const mount = q.get("mount");
    if (mount) {
      const from = q.get("from");
      const source = from ? this.hasBlob(from, mount) : this.options.anonymousMount &&
        this.blobs.has(mount);
      if (source) {
        this.#repoBlobs(repo).add(mount);
        return blobCreated(repo, mount);
      }
      return this.#newUpload(repo);
    }
    const digest = q.get("digest");
    if (digest) {
      const bytes = new Uint8Array(await c.req.arrayBuffer());
      if (digestOf(bytes) !== digest) return ociError(400, "DIGEST_INVALID", "digest mismatch");
      this.putBlob(repo, bytes);
      return blobCreated(repo, digest);
    }
    return this.#newUpload(repo);
  }

  #upload(c: Context): Upload | undefined {
    const up = this.uploads.get(c.req.param("id")!);
    return up && up.repo === c.req.param("name") ? up : undefined;
  }

  #progress(c: Context, up: Upload, status: number): Response {
    return new Response(null, {
      status,
      headers: {
        location: `/v2/${up.repo}/blobs/uploads/${c.req.param("id")}?_state=p${up.size}`,
        // as distribution: an empty session is `0-0` too
        range: `0-${Math.max(0, up.size - 1)}`,
        "docker-upload-uuid": c.req.param("id")!,
      },
    });
  }

  #uploadStatus(c: Context): Response {
    const up = this.#upload(c);
    if (!up) return ociError(404, "BLOB_UPLOAD_UNKNOWN", "upload unknown");
    return this.#progress(c, up, 204);
  }

  async #patch(c: Context): Promise<Response> {
    const up = this.#upload(c);
    if (!up) return ociError(404, "BLOB_UPLOAD_UNKNOWN", "upload unknown");
    const range = c.req.header("content-range");
    if (range !== undefined) {
      const m = range.match(/^(\d+)-(\d+)$/);
      if (!m) return ociError(400, "BLOB_UPLOAD_INVALID", `bad Content-Range ${range}`);
      if (Number(m[1]) !== up.size) {
        await c.req.raw.body?.cancel().catch(() => {});
        return this.#progress(c, up, 416);
      }
    }
    await readInto(c.req.raw.body, up);
    return this.#progress(c, up, 202);
  }

  async #finishUpload(c: Context): Promise<Response> {
    const up = this.#upload(c);
    if (!up) return ociError(404, "BLOB_UPLOAD_UNKNOWN", "upload unknown");
    const digest = new URL(c.req.url).searchParams.get("digest");
    if (!digest) return ociError(400, "DIGEST_INVALID", "no digest");
    await readInto(c.req.raw.body, up);
    const bytes = concatBytes(up.chunks);
    this.uploads.delete(c.req.param("id")!);
    if (digestOf(bytes) !== digest) {
      return ociError(400, "DIGEST_INVALID", `uploaded content has digest ${digestOf(bytes)}`);
    }
    this.putBlob(up.repo, bytes);
    return blobCreated(up.repo, digest);
  }

  #getBlob(c: Context): Response {
    const repo = c.req.param("name")!;
    const digest = c.req.param("digest")!;
    const bytes = this.hasBlob(repo, digest) ? this.blobs.get(digest) : undefined;
    if (!bytes) return ociError(404, "BLOB_UNKNOWN", `blob ${digest} unknown`);
    const headers: Record<string, string> = {
      "content-type": "application/octet-stream",
      "docker-content-digest": digest,
    };
    if (c.req.method === "HEAD") {
      headers["content-length"] = String(bytes.byteLength);
      return new Response(null, { status: 200, headers });
    }
    if (this.options.blobRedirect) {
      return new Response(null, {
        status: 307,
        headers: { location: `${this.options.blobRedirect}/cdn/${digest}` },
      });
    }
    const range = c.req.header("range")?.match(/^bytes=(\d+)-(\d*)$/);
    if (range && !this.options.ignoreRange) {
      const start = Number(range[1]);
      const end = range[2]
        ? Math.min(Number(range[2]), bytes.byteLength - 1)
        : bytes.byteLength - 1;
      if (start >= bytes.byteLength) {
        return new Response(null, {
          status: 416,
          headers: { "content-range": `bytes */${bytes.byteLength}` },
        });
      }
      headers["content-range"] = `bytes ${start}-${end}/${bytes.byteLength}`;
      return new Response(bodyOf(bytes.slice(start, end + 1)), { status: 206, headers });
    }
    return new Response(bodyOf(bytes), { status: 200, headers });
  }
}

/** Runs `fn` with a fake registry started with `options`, closing it afterwards. */
export async function withFakeRegistry(
  fn: (reg: FakeRegistry) => Promise<void>,
  options: FakeRegistryOptions = {},
): Promise<void> {
  const reg = await FakeRegistry.start(options);
  try {
    await fn(reg);
  } finally {
    await reg.close();
  }
}

/** An OCI error response. */
export function ociError(
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify({ errors: [{ code, message }] }), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/** `bytes` as a Response body. */
export function bodyOf(bytes: Uint8Array): BodyInit {
  return bytes as Uint8Array<ArrayBuffer>;
}

function blobCreated(repo: string, digest: string): Response {
  return new Response(null, {
    status: 201,
    headers: { location: `/v2/${repo}/blobs/${digest}`, "docker-content-digest": digest },
  });
}

function grants(scope: string, repo: string, action: string): boolean {
  const [type, name, actions] = scope.split(":");
  return type === "repository" && name === repo && (actions ?? "").split(",").includes(action);
}

function matchPath(path: string, pattern: string | RegExp | undefined): boolean {
  if (pattern === undefined) return true;
  return typeof pattern === "string" ? path.includes(pattern) : pattern.test(path);
}

/** Appends a body to an upload as it arrives (a cut connection keeps what arrived). */
async function readInto(body: ReadableStream<Uint8Array> | null, up: Upload): Promise<void> {
  if (!body) return;
  try {
    for await (const chunk of body) {
      up.chunks.push(chunk.slice());
      up.size += chunk.byteLength;
    }
  } catch {
    // the connection was cut: keep the bytes that arrived
  }
}

/**
 * A TCP proxy on 127.0.0.1 in front of an HTTP/1.1 server (the fake, or a real registry), parsing
 * request heads so it can cut the connection of a matching request after some of its body bytes
 * (the server keeps what arrived). Other traffic, TLS included, passes through unchanged.
 */
export class TcpProxy {
  #listener: Deno.Listener<Deno.TcpConn, Deno.NetAddr>;
  #conns = new Set<Deno.TcpConn>();
  #accepting: Promise<void>;
  #pipes: Promise<void>[] = [];

  constructor(readonly target: number, readonly drops: DropRule[] = []) {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#accepting = this.#accept();
  }

  get port(): number {
    return this.#listener.addr.port;
  }

  /** Cuts the next matching request (after `skip` matches) after `afterBodyBytes` body bytes. */
  drop(match: RequestMatch & { afterBodyBytes: number; skip?: number }): void {
    this.drops.push({ ...match, skip: match.skip ?? 0 });
  }

  async #accept(): Promise<void> {
    try {
      for await (const client of this.#listener) {
        this.#pipes.push(this.#handle(client).catch(() => {}));
      }
    } catch {
      // listener closed
    }
  }

  async #handle(client: Deno.TcpConn): Promise<void> {
    const server = await Deno.connect({ hostname: "127.0.0.1", port: this.target });
    this.#conns.add(client);
    this.#conns.add(server);
    const closeBoth = () => {
      for (const c of [client, server]) {
        try {
          c.close();
        } catch { /* already closed */ }
        this.#conns.delete(c);
      }
    };
    const back = (async () => {
      const buf = new Uint8Array(64 * 1024);
      try {
        for (;;) {
          const n = await server.read(buf);
          if (n === null) break;
          await writeAll(client, buf.subarray(0, n));
        }
      } catch { /* closed */ }
    })();
    let pending = new Uint8Array(0);
    let bodyLeft = 0;
    let cut: { left: number } | undefined;
    let passthrough = false;
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await client.read(buf);
        if (n === null) break;
        let data = buf.slice(0, n);
        while (data.byteLength > 0) {
          if (cut) {
            const take = data.subarray(0, cut.left);
            await writeAll(server, take);
            cut.left -= take.byteLength;
            data = data.subarray(take.byteLength);
            if (cut.left === 0) {
              await new Promise((r) => setTimeout(r, 20));
              try {
                server.close();
              } catch { /* closed */ }
              this.#conns.delete(server);
              await new Promise((r) => setTimeout(r, 100));
              closeBoth();
              await back;
              return;
            }
            continue;
          }
          if (bodyLeft > 0) {
            const take = data.subarray(0, bodyLeft);
            await writeAll(server, take);
            bodyLeft -= take.byteLength;
            data = data.subarray(take.byteLength);
            continue;
          }
          if (passthrough || (pending.byteLength === 0 && !(data[0] >= 65 && data[0] <= 90))) {
            passthrough = true; // not HTTP/1.1 (a TLS hello): just forward
            await writeAll(server, data);
            break;
          }
          pending = concatBytes([pending, data]);
          data = new Uint8Array(0);
          const end = indexOfHeadEnd(pending);
          if (end < 0) break;
          const head = new TextDecoder().decode(pending.subarray(0, end));
          const rest = pending.subarray(end + 4);
          await writeAll(server, pending.subarray(0, end + 4));
          pending = new Uint8Array(0);
          const [method, target] = head.split("\r\n")[0].split(" ");
          const length = Number(head.match(/\r\ncontent-length:\s*(\d+)/i)?.[1] ?? "0");
          const path = (target ?? "").split("?")[0];
          const rule = this.drops.find((r) =>
            (!r.method || r.method === method) && matchPath(path, r.path)
          );
          if (rule && rule.skip > 0) rule.skip--;
          else if (rule) {
            this.drops.splice(this.drops.indexOf(rule), 1);
            cut = { left: Math.min(rule.afterBodyBytes, length) };
          }
          bodyLeft = cut ? 0 : length;
          data = rest;
          if (cut && cut.left === 0) {
            closeBoth();
            await back;
            return;
          }
        }
      }
    } catch { /* closed */ }
    closeBoth();
    await back;
  }

  /** Stops accepting and closes every connection (see {@link done}). */
  close(): void {
    try {
      this.#listener.close();
    } catch { /* closed */ }
    for (const c of this.#conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    this.#conns.clear();
  }

  /** Resolves when every connection's pipes have ended. */
  async done(): Promise<void> {
    await this.#accepting;
    await Promise.all(this.#pipes);
  }
}

function indexOfHeadEnd(bytes: Uint8Array): number {
  for (let i = 0; i + 3 < bytes.byteLength; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) {
      return i;
    }
  }
  return -1;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.byteLength) off += await conn.write(bytes.subarray(off));
}

// ---------------------------------------------------------------------------------------------
// Content for tests

/** An image made by {@link makeImage}. */
export interface FakeImage {
  manifest: RawManifest;
  config: Descriptor;
  configBytes: Uint8Array;
  layers: Descriptor[];
  layerBytes: Uint8Array[];
  platform: Platform;
}

/** An index made by {@link makeIndex}. */
export interface FakeIndex {
  manifest: RawManifest;
  children: FakeImage[];
}

/** Options of {@link makeImage}. */
export interface MakeImageOptions {
  /** Layer contents (strings are UTF-8 encoded). Default: one small layer. */
  layers?: (string | Uint8Array)[];
  platform?: Platform;
  /** Docker v2s2 media types instead of OCI. */
  docker?: boolean;
  /** Extra manifest annotations (to pad manifests or make them unique). */
  annotations?: Record<string, string>;
}

/** Builds an image in memory (layers are opaque bytes: the registry does not look inside). */
export function makeImage(options: MakeImageOptions = {}): FakeImage {
  const platform = options.platform ?? { os: "linux", architecture: "amd64" };
  const layerBytes = (options.layers ?? [`layer of ${JSON.stringify(platform)}`]).map((l) =>
    typeof l === "string" ? encoder.encode(l) : l
  );
  const layerType = options.docker
    ? "application/vnd.docker.image.rootfs.diff.tar.gzip"
    : OCI.layerGzip;
  const layers = layerBytes.map((b) => ({
    mediaType: layerType,
    digest: digestOf(b),
    size: b.byteLength,
  }));
  const configBytes = canonicalJson({
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    rootfs: { type: "layers", diff_ids: layers.map((l) => l.digest) },
  });
  const config = {
    mediaType: options.docker ? "application/vnd.docker.container.image.v1+json" : OCI.config,
    digest: digestOf(configBytes),
    size: configBytes.byteLength,
  };
  const mediaType = options.docker
    ? "application/vnd.docker.distribution.manifest.v2+json"
    : OCI.manifest;
  const bytes = canonicalJson({
    schemaVersion: 2,
    mediaType,
    config,
    layers,
    ...(options.annotations ? { annotations: options.annotations } : {}),
  });
  return {
    manifest: { bytes, mediaType, digest: digestOf(bytes) },
    config,
    configBytes,
    layers,
    layerBytes,
    platform,
  };
}

/** Builds an index of `children` (platforms from each child). */
export function makeIndex(children: FakeImage[], options: { docker?: boolean } = {}): FakeIndex {
  const mediaType = options.docker
    ? "application/vnd.docker.distribution.manifest.list.v2+json"
    : OCI.index;
  const bytes = canonicalJson({
    schemaVersion: 2,
    mediaType,
    manifests: children.map((c) => ({
      mediaType: c.manifest.mediaType,
      digest: c.manifest.digest,
      size: c.manifest.bytes.byteLength,
      platform: c.platform,
    })),
  });
  return { manifest: { bytes, mediaType, digest: digestOf(bytes) }, children };
}

/** Deterministic pseudo-random bytes (for blobs whose chunks must differ). */
export function randomBytes(size: number, seed = 1): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** A free TCP port on 127.0.0.1 (closed again; racy but fine for tests). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return port;
}

/** PEM files of a private CA and a leaf for `localhost` and `127.0.0.1` signed by it. */
export interface TestCertificates {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  ca: string;
  cert: string;
  key: string;
}

/** Makes a CA and a server certificate with openssl in a new temporary directory. */
export async function makeTestCertificates(): Promise<TestCertificates> {
  const dir = await Deno.makeTempDir({ prefix: "kaniko-certs-" });
  const run = async (args: string[]) => {
    const out = await new Deno.Command("openssl", {
      args,
      cwd: dir,
      stdout: "null",
      stderr: "piped",
    })
      .output();
    if (!out.success) {
      throw new Error(`openssl ${args[0]}: ${new TextDecoder().decode(out.stderr)}`);
    }
  };
  await run([
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "2",
    "-subj",
    "/CN=kaniko test CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  await run([
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "leaf.key",
    "-out",
    "leaf.csr",
    "-subj",
    "/CN=localhost",
  ]);
  await Deno.writeTextFile(
    `${dir}/ext.cnf`,
    "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n" +
      "extendedKeyUsage=serverAuth\n",
  );
  await run([
    "x509",
    "-req",
    "-in",
    "leaf.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "leaf.pem",
    "-days",
    "2",
    "-extfile",
    "ext.cnf",
  ]);
  const read = (f: string) => Deno.readTextFile(`${dir}/${f}`);
  return {
    dir,
    caFile: `${dir}/ca.pem`,
    certFile: `${dir}/leaf.pem`,
    keyFile: `${dir}/leaf.key`,
    ca: await read("ca.pem"),
    cert: await read("leaf.pem"),
    key: await read("leaf.key"),
  };
}

// ---------------------------------------------------------------------------------------------
// Running the CLI and a real registry

/** The repository root (where `cli.ts` lives). */
export const REPO_ROOT = new URL("..", import.meta.url).pathname;

/** What a CLI run produced. */
export interface CliResult {
  code: number;
  stdout: Uint8Array;
  /** stdout as text. */
  out: string;
  /** stderr as text. */
  err: string;
}

/**
 * Runs `deno run -A cli.ts ARGS` from the repository root. `DOCKER_CONFIG` defaults to an empty
 * temporary directory, so the user's own credentials are never read.
 */
export async function runCli(
  args: string[],
  options: { env?: Record<string, string> } = {},
): Promise<CliResult> {
  let emptyConfig: string | undefined;
  const env: Record<string, string> = { NO_COLOR: "1", ...options.env };
  if (!env.DOCKER_CONFIG) env.DOCKER_CONFIG = emptyConfig = await Deno.makeTempDir();
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${REPO_ROOT}cli.ts`, ...args],
      cwd: REPO_ROOT,
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decoder = new TextDecoder();
    return {
      code: out.code,
      stdout: out.stdout,
      out: decoder.decode(out.stdout),
      err: decoder.decode(out.stderr),
    };
  } finally {
    if (emptyConfig) await Deno.remove(emptyConfig, { recursive: true });
  }
}

/** A `docker-registry` (distribution 2.8) process serving plain HTTP on 127.0.0.1. */
export interface DockerRegistry {
  host: string;
  dir: string;
  /** Stops the process (by its PID) and removes its storage. */
  stop(): Promise<void>;
}

/** True when the `docker-registry` binary is installed. */
export function hasDockerRegistry(): boolean {
  try {
    return Deno.statSync("/usr/bin/docker-registry").isFile;
  } catch {
    return false;
  }
}

/** Starts `docker-registry serve CONFIG` on a free port with storage in a temporary directory. */
export async function startDockerRegistry(): Promise<DockerRegistry> {
  const dir = await Deno.makeTempDir({ prefix: "kaniko-registry-" });
  for (let attempt = 0;; attempt++) {
    const port = freePort();
    const config = [
      "version: 0.1",
      "log:",
      "  level: error",
      "  accesslog:",
      "    disabled: true",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${dir}/data`,
      "  delete:",
      "    enabled: true",
      "http:",
      `  addr: 127.0.0.1:${port}`,
      "",
    ].join("\n");
    await Deno.writeTextFile(`${dir}/config.yml`, config);
    const child = new Deno.Command("docker-registry", {
      args: ["serve", `${dir}/config.yml`],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const kill = async () => {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      await child.status;
    };
    const stop = async () => {
      await kill();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    };
    const host = `127.0.0.1:${port}`;
    const exited = child.status.then(() => true);
    for (let i = 0; i < 100; i++) {
      const up = await fetch(`http://${host}/v2/`).then(async (r) => {
        await r.body?.cancel();
        return r.status === 200;
      }, () => false);
      if (up) return { host, dir, stop };
      if (await Promise.race([exited, new Promise<false>((r) => setTimeout(() => r(false), 50))])) {
        break;
      }
    }
    await kill();
    if (attempt >= 2) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw new Error("docker-registry did not start");
    }
  }
}
