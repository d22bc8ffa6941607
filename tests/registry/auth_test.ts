import assert from "node:assert/strict";
import { Hono } from "hono";
import { KanikoError } from "../../lib/errors.ts";
import {
  Authenticator,
  authenticatorFor,
  type AuthenticatorOptions,
  CLIENT_ID,
  normalizeScopes,
  repositoryScope,
} from "../../lib/registry/auth.ts";
import { type Credentials, makeCredentials } from "../../lib/registry/docker_config.ts";
import type { HttpRequest, HttpResponse, HttpTransport } from "../../lib/registry/http_types.ts";
import { defaultRegistryOptions } from "../../lib/registry/options.ts";

const USER = "alice";
const SECRET = "Pa55-w0rd-secret";
const ID_TOKEN = "identity-refresh-token-xyz";
const REG_TOKEN = "static-registry-token-abc";
const SECRETS = [SECRET, ID_TOKEN, REG_TOKEN, btoa(`${USER}:${SECRET}`), btoa(`${USER}:wrong`)];
const SOURCE = "/home/u/.docker/config.json";

/** Every error any test saw, scanned for secrets at the end of each test. */
const seenErrors: unknown[] = [];

/** A fetch-based transport that records requests (https is served as http here). */
class FetchTransport implements HttpTransport {
  requests: HttpRequest[] = [];
  async send(request: HttpRequest): Promise<HttpResponse> {
    this.requests.push(request);
    const url = request.url.replace(/^https:/, "http:");
    let res: Response;
    try {
      res = await fetch(url, {
        method: request.method,
        headers: request.headers,
        body: typeof request.body === "string" ? request.body : undefined,
      });
    } catch (e) {
      throw new KanikoError(`cannot connect to ${new URL(url).host}: ${(e as Error).message}`, {
        code: "NETWORK",
      });
    }
    return {
      status: res.status,
      headers: res.headers,
      url,
      body: res.body,
      bytes: async () => new Uint8Array(await res.arrayBuffer()),
      text: () => res.text(),
      discard: async () => {
        if (!res.bodyUsed) await res.body?.cancel();
      },
    };
  }
}

type Mode = "bearer" | "basic" | "open";

interface ServerConfig {
  mode: Mode;
  expiresIn?: number;
  oauth?: boolean;
  tokenStatus?: number;
  tokenBody?: string;
}

/** A registry plus token server on 127.0.0.1:0, with request counters. */
class TestServer {
  config: ServerConfig;
  tokenGets: URL[] = [];
  tokenGetAuth: (string | undefined)[] = [];
  tokenPosts: URLSearchParams[] = [];
  pings = 0;
  granted = new Map<string, Set<string>>();
  #server: Deno.HttpServer<Deno.NetAddr>;
  #next = 0;

  constructor(config: ServerConfig) {
    this.config = config;
    const app = new Hono();
    app.get("/v2/", (c) => {
      this.pings++;
      return this.config.mode === "open" ? c.json({}) : this.#challenge();
    });
    app.get("/token", (c) => this.#getToken(c.req.raw));
    app.post("/token", async (c) => await this.#postToken(c.req.raw));
    app.on(["GET", "PUT"], "/v2/*", (c) => this.#resource(c.req.raw));
    this.#server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, app.fetch);
  }

  get host(): string {
    return `127.0.0.1:${this.#server.addr.port}`;
  }

  get realm(): string {
    return `http://${this.host}/token`;
  }

  async close(): Promise<void> {
    await this.#server.shutdown();
  }

  revokeAll(): void {
    this.granted.clear();
  }

  #challenge(): Response {
    const value = this.config.mode === "basic"
      ? 'Basic realm="testbed-realm"'
      : `Bearer realm="${this.realm}",service="test-registry"`;
    return new Response('{"errors":[{"code":"UNAUTHORIZED"}]}', {
      status: 401,
      headers: { "www-authenticate": value },
    });
  }

  #issue(scopes: string[], user: string | undefined): Response {
    if (this.config.tokenStatus) {
      return new Response(this.config.tokenBody ?? "nope", { status: this.config.tokenStatus });
    }
    if (this.config.tokenBody) return new Response(this.config.tokenBody);
    const token = `tok-${++this.#next}`;
    const grants = new Set<string>();
    for (const scope of scopes.flatMap((s) => s.split(" "))) {
      const [type, name, actions] = [scope.slice(0, scope.indexOf(":")), ...splitRest(scope)];
      for (const action of actions.split(",")) {
        if (user || action === "pull") grants.add(`${type}:${name}:${action}`);
      }
    }
    this.granted.set(token, grants);
    const body: Record<string, unknown> = { token, issued_at: new Date().toISOString() };
    if (this.config.expiresIn !== undefined) body.expires_in = this.config.expiresIn;
    return Response.json(body);
  }

  #getToken(req: Request): Response {
    const url = new URL(req.url);
    this.tokenGets.push(url);
    const auth = req.headers.get("authorization") ?? undefined;
    this.tokenGetAuth.push(auth);
    let user: string | undefined;
    if (auth) {
      if (auth !== `Basic ${btoa(`${USER}:${SECRET}`)}`) {
        return Response.json({ details: "invalid username/password" }, { status: 401 });
      }
      user = USER;
    }
    return this.#issue(url.searchParams.getAll("scope"), user);
  }

  async #postToken(req: Request): Promise<Response> {
    const form = new URLSearchParams(await req.text());
    this.tokenPosts.push(form);
    if (!this.config.oauth) return new Response("not found", { status: 404 });
    if (form.get("grant_type") !== "refresh_token" || form.get("refresh_token") !== ID_TOKEN) {
      return Response.json({ error: "invalid_grant" }, { status: 400 });
    }
    const res = this.#issue([form.get("scope") ?? ""], USER);
    if (res.status !== 200) return res;
    const body = await res.json();
    return Response.json({ access_token: body.token, expires_in: body.expires_in });
  }

  #resource(req: Request): Response {
    const path = new URL(req.url).pathname;
    const repo = path.slice("/v2/".length, path.lastIndexOf("/manifests/"));
    const action = req.method === "PUT" ? "push" : "pull";
    const auth = req.headers.get("authorization") ?? "";
    if (this.config.mode === "basic") {
      if (auth === `Basic ${btoa(`${USER}:${SECRET}`)}`) return new Response("ok");
      return new Response("", {
        status: 401,
        headers: { "www-authenticate": 'Basic realm="testbed-realm"' },
      });
    }
    if (this.config.mode === "open") return new Response("ok");
    const grants = this.granted.get(auth.replace(/^Bearer /, ""));
    if (grants?.has(`repository:${repo}:${action}`)) return new Response("ok");
    const scope = `repository:${repo}:${action === "push" ? "pull,push" : "pull"}`;
    const error = grants ? ',error="insufficient_scope"' : "";
    return new Response("", {
      status: 401,
      headers: {
        "www-authenticate":
          `Bearer realm="${this.realm}",service="test-registry",scope="${scope}"${error}`,
      },
    });
  }
}

function splitRest(scope: string): [string, string] {
  const rest = scope.slice(scope.indexOf(":") + 1);
  const i = rest.lastIndexOf(":");
  return [rest.slice(0, i), rest.slice(i + 1)];
}

/** The registry client's flow: authorize, send, on 401 refresh once and retry. */
async function call(
  auth: Authenticator,
  transport: FetchTransport,
  server: TestServer,
  req: { method?: string; repo: string; scopes: string[] },
): Promise<number> {
  const url = `https://${server.host}/v2/${req.repo}/manifests/latest`;
  const send = async (authorization?: string) =>
    await transport.send({
      method: req.method ?? "GET",
      url,
      headers: authorization ? { authorization } : {},
    });
  let res = await send(await auth.authorize(req.scopes));
  if (res.status === 401) {
    await res.discard();
    res = await send(await auth.handleUnauthorized(res, req.scopes));
    if (res.status === 401) {
      await res.discard();
      throw auth.unauthorizedError(req.scopes);
    }
  }
  await res.discard();
  return res.status;
}

interface Setup {
  server: TestServer;
  transport: FetchTransport;
  auth: Authenticator;
  clock: { now: number };
  credentialLookups: () => number;
}

async function withSetup(
  config: ServerConfig,
  creds: Credentials | undefined,
  fn: (s: Setup) => Promise<void>,
  extra: Partial<AuthenticatorOptions> = {},
): Promise<void> {
  const server = new TestServer(config);
  const transport = new FetchTransport();
  const clock = { now: 1_000_000 };
  let lookups = 0;
  const credentials = async () => {
    lookups++;
    await Promise.resolve();
    return makeCredentials({ ...(creds ?? {}), source: creds?.source ?? SOURCE });
  };
  const auth = new Authenticator(server.host, {
    transport,
    credentials,
    now: () => clock.now,
    ...extra,
  });
  try {
    await fn({ server, transport, auth, clock, credentialLookups: () => lookups });
  } catch (e) {
    seenErrors.push(e);
    throw e;
  } finally {
    await server.close();
    assertNoSecrets();
  }
}

/** Runs `fn`, expecting a KanikoError matching `pattern`; records it for the secret scan. */
async function expectError(fn: () => Promise<unknown>, pattern: RegExp): Promise<KanikoError> {
  try {
    await fn();
  } catch (e) {
    seenErrors.push(e);
    assert.ok(e instanceof KanikoError, String(e));
    assert.match(e.message, pattern);
    assert.ok(!e.message.includes("\n"));
    return e;
  }
  assert.fail(`expected an error matching ${pattern}`);
}

function assertNoSecrets(): void {
  for (const e of seenErrors) {
    const texts = [String(e), Deno.inspect(e), JSON.stringify(e)];
    if (e instanceof KanikoError) texts.push(e.message, e.hint ?? "", String(e.cause ?? ""));
    for (const text of texts) {
      for (const secret of SECRETS) assert.ok(!text.includes(secret), `secret leaked: ${text}`);
    }
  }
}

const CREDS: Credentials = { username: USER, password: SECRET, source: SOURCE };
const PULL = [repositoryScope("a/b", "pull")];

Deno.test("open registry: anonymous after one ping, no credential lookup", async () => {
  await withSetup(
    { mode: "open" },
    CREDS,
    async ({ auth, transport, server, credentialLookups }) => {
      assert.equal(await auth.authorize(PULL), undefined);
      assert.equal(await auth.authorize(["repository:c:pull,push"]), undefined);
      assert.equal(await call(auth, transport, server, { repo: "a/b", scopes: PULL }), 200);
      assert.equal(server.pings, 1);
      assert.equal(server.tokenGets.length, 0);
      assert.equal(credentialLookups(), 0);
      assert.deepEqual(await auth.scheme(), { kind: "anonymous" });
    },
  );
});

Deno.test("bearer: GET realm with Basic, service and one scope param per scope", async () => {
  await withSetup({ mode: "bearer", expiresIn: 300 }, CREDS, async ({ auth, server }) => {
    const value = await auth.authorize(["repository:x/y:pull,push", "repository:a/b:pull"]);
    assert.equal(value, "Bearer tok-1");
    const url = server.tokenGets[0];
    assert.equal(url.searchParams.get("service"), "test-registry");
    assert.deepEqual(url.searchParams.getAll("scope"), [
      "repository:a/b:pull",
      "repository:x/y:pull,push",
    ]);
    assert.equal(url.searchParams.get("account"), USER);
    assert.equal(server.tokenGetAuth[0], `Basic ${btoa(`${USER}:${SECRET}`)}`);
  });
});

Deno.test("bearer: tokens are cached per scope set, concurrent requests share one fetch", async () => {
  await withSetup({ mode: "bearer", expiresIn: 300 }, CREDS, async ({ auth, server }) => {
    const many = await Promise.all(Array.from({ length: 8 }, () => auth.authorize(PULL)));
    assert.deepEqual(new Set(many), new Set(["Bearer tok-1"]));
    assert.equal(server.tokenGets.length, 1);
    assert.equal(server.pings, 1);
    // Same set in another order or with duplicates: cached.
    assert.equal(await auth.authorize([...PULL, ...PULL]), "Bearer tok-1");
    // Another scope set: a new token.
    assert.equal(await auth.authorize(["repository:a/b:pull,push"]), "Bearer tok-2");
    assert.equal(await auth.authorize(PULL), "Bearer tok-1");
    assert.equal(server.tokenGets.length, 2);
  });
});

Deno.test("bearer: refresh shortly before expiry, and 60 s without expires_in", async () => {
  await withSetup({ mode: "bearer", expiresIn: 10 }, CREDS, async ({ auth, server, clock }) => {
    assert.equal(await auth.authorize(PULL), "Bearer tok-1");
    clock.now += 8_000;
    assert.equal(await auth.authorize(PULL), "Bearer tok-1", "still valid at 8 s");
    clock.now += 1_500;
    assert.equal(await auth.authorize(PULL), "Bearer tok-2", "refreshed before the 10 s expiry");
    assert.equal(server.tokenGets.length, 2);
  });
  await withSetup({ mode: "bearer" }, CREDS, async ({ auth, clock }) => {
    assert.equal(await auth.authorize(PULL), "Bearer tok-1");
    clock.now += 50_000;
    assert.equal(await auth.authorize(PULL), "Bearer tok-1");
    clock.now += 10_000;
    assert.equal(await auth.authorize(PULL), "Bearer tok-2");
  });
});

Deno.test("bearer: a 401 after a cached token drops it and fetches again once", async () => {
  await withSetup({ mode: "bearer", expiresIn: 300 }, CREDS, async (s) => {
    assert.equal(await call(s.auth, s.transport, s.server, { repo: "a/b", scopes: PULL }), 200);
    assert.equal(s.server.tokenGets.length, 1);
    s.server.revokeAll();
    assert.equal(await call(s.auth, s.transport, s.server, { repo: "a/b", scopes: PULL }), 200);
    assert.equal(s.server.tokenGets.length, 2);
    assert.equal(await s.auth.authorize(PULL), "Bearer tok-2", "the fresh token is cached");
    assert.equal(s.server.tokenGets.length, 2);
  });
});

Deno.test("bearer: the challenge's scope widens the token (insufficient_scope)", async () => {
  await withSetup({ mode: "bearer", expiresIn: 300 }, CREDS, async (s) => {
    // The caller asks for pull only, but PUT needs push: the 401 names the scope it needs.
    const status = await call(s.auth, s.transport, s.server, {
      method: "PUT",
      repo: "a/b",
      scopes: PULL,
    });
    assert.equal(status, 200);
    assert.deepEqual(s.server.tokenGets[1].searchParams.getAll("scope"), [
      "repository:a/b:pull",
      "repository:a/b:pull,push",
    ]);
    // Later requests for the same scopes reuse the widened token.
    assert.equal(await s.auth.authorize(PULL), "Bearer tok-2");
    assert.equal(s.server.tokenGets.length, 2);
  });
});

Deno.test("bearer: anonymous token requests carry no Authorization", async () => {
  await withSetup({ mode: "bearer", expiresIn: 300 }, {}, async (s) => {
    assert.equal(await call(s.auth, s.transport, s.server, { repo: "a/b", scopes: PULL }), 200);
    assert.equal(s.server.tokenGetAuth[0], undefined);
    assert.equal(s.server.tokenGets[0].searchParams.get("account"), null);
    // Anonymous push: the token server grants pull only, so the retry fails clearly.
    const e = await expectError(
      () =>
        call(s.auth, s.transport, s.server, {
          method: "PUT",
          repo: "a/b",
          scopes: ["repository:a/b:pull,push"],
        }),
      /requires authentication for repository:a\/b:pull,push and no credentials were found in \/home\/u\/\.docker\/config\.json/,
    );
    assert.match(e.hint ?? "", /docker login/);
    assert.equal(e.code, "UNAUTHORIZED");
  });
});

Deno.test("bearer: bad credentials name the source, never the secret", async () => {
  const bad = { username: USER, password: "wrong", source: SOURCE };
  await withSetup({ mode: "bearer" }, bad, async (s) => {
    const e = await expectError(
      () => s.auth.authorize(PULL),
      /^authentication to 127\.0\.0\.1:\d+ failed: invalid username or password$/,
    );
    assert.equal(e.hint, `check the credentials in ${SOURCE}`);
  });
  const helper = { ...bad, source: "credential helper docker-credential-ecr-login" };
  await withSetup({ mode: "bearer" }, helper, async (s) => {
    const e = await expectError(() => s.auth.authorize(PULL), /invalid username or password/);
    assert.match(e.hint ?? "", /docker-credential-ecr-login/);
  });
});

Deno.test("bearer: identity token uses the OAuth2 refresh_token POST", async () => {
  const creds = { identityToken: ID_TOKEN, source: "credential helper docker-credential-test" };
  await withSetup({ mode: "bearer", oauth: true, expiresIn: 300 }, creds, async (s) => {
    assert.equal(
      await s.auth.authorize(["repository:a/b:pull", "repository:c:pull"]),
      "Bearer tok-1",
    );
    assert.equal(s.server.tokenGets.length, 0);
    const form = s.server.tokenPosts[0];
    assert.equal(form.get("grant_type"), "refresh_token");
    assert.equal(form.get("refresh_token"), ID_TOKEN);
    assert.equal(form.get("service"), "test-registry");
    assert.equal(form.get("scope"), "repository:a/b:pull repository:c:pull");
    assert.equal(form.get("client_id"), CLIENT_ID);
    assert.equal(CLIENT_ID, "kaniko-deno");
    const post = s.transport.requests.find((r) => r.method === "POST");
    assert.equal(post?.headers?.["content-type"], "application/x-www-form-urlencoded");
  });
  const badToken = { identityToken: "not-the-token", source: SOURCE };
  await withSetup({ mode: "bearer", oauth: true }, badToken, async (s) => {
    await expectError(() => s.auth.authorize(PULL), /identity token was refused/);
  });
});

Deno.test("bearer: without an OAuth2 endpoint (404) it falls back to GET", async () => {
  const creds = { identityToken: ID_TOKEN, username: USER, password: SECRET, source: SOURCE };
  await withSetup({ mode: "bearer", oauth: false }, creds, async (s) => {
    assert.equal(await s.auth.authorize(PULL), "Bearer tok-1");
    assert.equal(s.server.tokenPosts.length, 1);
    assert.equal(s.server.tokenGets.length, 1);
  });
});

Deno.test("bearer: a registry token is sent as is", async () => {
  await withSetup({ mode: "bearer" }, { registryToken: REG_TOKEN }, async (s) => {
    assert.equal(await s.auth.authorize(PULL), `Bearer ${REG_TOKEN}`);
    assert.equal(s.server.tokenGets.length + s.server.tokenPosts.length, 0);
    await expectError(
      () => call(s.auth, s.transport, s.server, { repo: "a/b", scopes: PULL }),
      /refused the credentials from/,
    );
  });
});

Deno.test("basic: credentials as Basic; refused or missing credentials fail clearly", async () => {
  await withSetup({ mode: "basic" }, CREDS, async (s) => {
    assert.equal(await s.auth.authorize(PULL), `Basic ${btoa(`${USER}:${SECRET}`)}`);
    assert.equal(await call(s.auth, s.transport, s.server, { repo: "a/b", scopes: PULL }), 200);
    assert.equal(s.server.tokenGets.length, 0);
  });
  await withSetup({ mode: "basic" }, { username: USER, password: "wrong" }, async (s) => {
    await expectError(
      () => call(s.auth, s.transport, s.server, { repo: "a/b", scopes: PULL }),
      /refused the credentials from \/home\/u\/\.docker\/config\.json for repository:a\/b:pull/,
    );
  });
  await withSetup({ mode: "basic" }, {}, async (s) => {
    assert.equal(await s.auth.authorize(PULL), undefined);
    await expectError(
      () => call(s.auth, s.transport, s.server, { repo: "a/b", scopes: PULL }),
      /requires authentication/,
    );
  });
});

Deno.test("token server failures: unreachable, HTTP 500, garbage", async () => {
  const dead = new TestServer({ mode: "open" });
  const deadRealm = dead.realm;
  await dead.close();
  const transport = new FetchTransport();
  const auth = new Authenticator("127.0.0.1:1", {
    transport,
    credentials: makeCredentials(CREDS),
  });
  const fake = {
    headers: new Headers({ "www-authenticate": `Bearer realm="${deadRealm}",service="s"` }),
  };
  const e = await expectError(
    () => auth.handleUnauthorized(fake, PULL),
    /^cannot reach the token server 127\.0\.0\.1:\d+ of 127\.0\.0\.1:1: /,
  );
  assert.ok(e.message.includes(new URL(deadRealm).host));
  assert.equal(e.code, "NETWORK");

  await withSetup(
    { mode: "bearer", tokenStatus: 500, tokenBody: `oops ${SECRET}` },
    CREDS,
    async (s) => {
      await expectError(
        () => s.auth.authorize(PULL),
        /token server 127\.0\.0\.1:\d+ of .* answered HTTP 500: oops \*\*\*/,
      );
    },
  );
  await withSetup({ mode: "bearer", tokenBody: "<html>" }, CREDS, async (s) => {
    await expectError(() => s.auth.authorize(PULL), /sent an invalid answer/);
  });
  await withSetup({ mode: "bearer", tokenBody: '{"expires_in":5}' }, CREDS, async (s) => {
    await expectError(() => s.auth.authorize(PULL), /sent an invalid answer/);
  });
  assertNoSecrets();
});

Deno.test("observe: the client's ping response sets the scheme without another ping", async () => {
  await withSetup({ mode: "bearer", expiresIn: 300 }, CREDS, async (s) => {
    const ping = await s.transport.send({ method: "GET", url: `https://${s.server.host}/v2/` });
    await s.auth.observe(ping); // discards the body (the leak sanitizer checks it)
    assert.equal(await s.auth.authorize(PULL), "Bearer tok-1");
    assert.equal(s.server.pings, 1);
    const scheme = await s.auth.scheme();
    assert.equal(scheme.kind, "bearer");
    // refresh(): the boolean form for clients that call authorize() again.
    s.server.revokeAll();
    const res = await s.transport.send({
      method: "GET",
      url: `https://${s.server.host}/v2/a/b/manifests/x`,
      headers: { authorization: "Bearer tok-1" },
    });
    assert.equal(res.status, 401);
    assert.equal(await s.auth.refresh(res, PULL), true);
    await res.discard();
    assert.equal(await s.auth.authorize(PULL), "Bearer tok-2");
  });
});

Deno.test("invalid realm in a challenge is a clear error", async () => {
  const auth = new Authenticator("r.io", {
    transport: new FetchTransport(),
    credentials: makeCredentials({}),
  });
  const res = { headers: new Headers({ "www-authenticate": 'Bearer realm="ftp://x/token"' }) };
  await expectError(() => auth.handleUnauthorized(res, PULL), /r\.io sent an invalid token realm/);
  const none = { headers: new Headers() };
  await expectError(() => auth.handleUnauthorized(none, PULL), /requires authentication/);
});

Deno.test("host settings come from the registry options", async () => {
  await withSetup({ mode: "bearer", expiresIn: 300 }, CREDS, async (s) => {
    await s.auth.authorize(PULL);
    const [ping, token] = s.transport.requests;
    assert.equal(ping.host?.allowHttp, true, "loopback registry");
    assert.equal(ping.host?.skipVerify, true);
    assert.equal(token.host?.allowHttp, true, "http realm");
    assert.equal(token.host?.skipVerify, true, "--skip-tls-verify applies to the realm");
  }, {
    options: { ...defaultRegistryOptions(), skipTlsVerify: true },
    direction: "push",
  });
});

Deno.test("authenticatorFor: one per registry per transport", () => {
  const transport = new FetchTransport();
  const a = authenticatorFor("r.io", { transport });
  assert.equal(authenticatorFor("r.io", { transport }), a);
  assert.notEqual(authenticatorFor("s.io", { transport }), a);
  assert.notEqual(authenticatorFor("r.io", { transport: new FetchTransport() }), a);
});

Deno.test("scope helpers", () => {
  assert.equal(repositoryScope("library/busybox", "pull"), "repository:library/busybox:pull");
  assert.equal(repositoryScope("x/y", ["pull", "push"]), "repository:x/y:pull,push");
  assert.deepEqual(normalizeScopes(["b:x:pull", "a:y:pull", "b:x:pull", ""]), [
    "a:y:pull",
    "b:x:pull",
  ]);
  assert.deepEqual(normalizeScopes("a:x:pull b:y:push"), ["a:x:pull", "b:y:push"]);
});

Deno.test("no secret appears in any error seen by these tests", () => {
  assert.ok(seenErrors.length >= 10, `only ${seenErrors.length} errors were checked`);
  assertNoSecrets();
});
