/**
 * Registry authentication: one {@link Authenticator} per registry host per process turns a set of
 * scopes (`repository:library/busybox:pull`, `repository:x/y:pull,push`, …) into an
 * `Authorization` header value, driven by the registry's challenge (from `GET /v2/` or a 401):
 * anonymous, Basic, or Bearer tokens from the realm's token server (GET with Basic credentials,
 * or docker's OAuth2 `refresh_token` POST for identity tokens), cached per scope set until shortly
 * before they expire. Secrets never appear in errors or logs.
 * @module
 */
import { z } from "zod";
import { describeError, KanikoError, oneLine } from "../errors.ts";
import { addSecret } from "../log.ts";
import { type Challenge, findChallenge, parseChallenges } from "./challenge.ts";
import {
  basicAuthorization,
  type Credentials,
  isAnonymous,
  resolveCredentials,
  scrubSecrets,
  secretsOf,
} from "./docker_config.ts";
import type { HttpResponse, HttpTransport } from "./http_types.ts";
import {
  type Direction,
  type HostSettings,
  hostSettings,
  type RegistryOptions,
} from "./options.ts";
import { apiHost } from "./reference.ts";

/** OAuth2 `client_id` sent with refresh-token grants. */
export const CLIENT_ID = "kaniko-deno";
/** Token lifetime assumed when the token server gives none (seconds), as the token spec says. */
export const DEFAULT_TOKEN_LIFETIME = 60;

/** Options of {@link Authenticator}. */
export interface AuthenticatorOptions {
  /** Sends the ping and token requests. */
  transport: HttpTransport;
  /** The registry flags: TLS settings of the registry and realm hosts, `dockerConfigDir`. */
  options?: RegistryOptions;
  /** Whether the registry is pulled from or pushed to (default `pull`); selects TLS settings. */
  direction?: Direction;
  /** Settings of the registry host for the `GET /v2/` ping; default from {@link options}. */
  registryHost?: HostSettings;
  /**
   * Settings of the token realm host (or a function of it); default from {@link options}.
   * `http:` realms always allow HTTP.
   */
  realmHost?: HostSettings | ((host: string) => HostSettings);
  /** The credentials, or how to get them; default `resolveCredentials(registry, …)`, on demand. */
  credentials?: Credentials | (() => Promise<Credentials>);
  /** `$DOCKER_CONFIG` directory for the default credential lookup; default from {@link options}. */
  dockerConfigDir?: string;
  /** Clock in milliseconds (tests). */
  now?: () => number;
}

/** How a registry wants to be authenticated. */
export type AuthScheme =
  | { kind: "anonymous" }
  | { kind: "basic" }
  | { kind: "bearer"; realm: URL; service?: string };

const TokenResponseSchema = z.looseObject({
  token: z.string().optional(),
  access_token: z.string().optional(),
  expires_in: z.number().optional(),
  issued_at: z.string().optional(),
  refresh_token: z.string().optional(),
}).refine((r) => !!(r.token || r.access_token), { message: "no token in the answer" });
type TokenResponse = z.infer<typeof TokenResponseSchema>;

interface CachedToken {
  token: string;
  expiresAt: number;
}

/** `repository:NAME:ACTIONS`, the scope for `actions` (`pull`, `push`, `delete`, `*`) on `repository`. */
export function repositoryScope(repository: string, actions: string | string[]): string {
  return `repository:${repository}:${typeof actions === "string" ? actions : actions.join(",")}`;
}

/** Sorted, de-duplicated scopes: the cache key of a scope set. */
export function normalizeScopes(scopes: string | string[]): string[] {
  const list = (typeof scopes === "string" ? [scopes] : scopes).flatMap((s) => s.split(" "));
  return [...new Set(list.filter((s) => s !== ""))].sort();
}

/**
 * Authorizes requests to one registry. Call {@link authorize} before each request; on a 401 call
 * {@link handleUnauthorized} and retry once with what it returns; on a second 401 throw
 * {@link unauthorizedError}.
 */
export class Authenticator {
  /** The registry (normalised host, e.g. `docker.io`) this authenticator is for. */
  readonly registry: string;
  #options: AuthenticatorOptions;
  #scheme?: Promise<AuthScheme>;
  #credentials?: Promise<Credentials>;
  #resolved?: Credentials;
  #tokens = new Map<string, CachedToken>();
  #inflight = new Map<string, Promise<string>>();
  #widened = new Map<string, string[]>();
  #refreshToken?: string;

  constructor(registry: string, options: AuthenticatorOptions) {
    this.registry = registry;
    this.#options = options;
  }

  /** The registry's scheme, from one `GET /v2/` (memoised; a failed ping is retried next time). */
  scheme(): Promise<AuthScheme> {
    if (!this.#scheme) {
      const pending = this.#scheme = this.#ping();
      pending.catch(() => this.#scheme === pending && (this.#scheme = undefined));
    }
    return this.#scheme;
  }

  /**
   * Learns the scheme from the client's own `GET /v2/` response (200: anonymous, 401: its
   * challenge) instead of pinging again; discards the response body.
   */
  async observe(response: HttpResponse): Promise<void> {
    await response.discard().catch(() => {});
    const scheme: AuthScheme = response.status === 401
      ? schemeOf(parseChallenges(response.headers.get("www-authenticate")), this.registry)
      : { kind: "anonymous" };
    this.#scheme = Promise.resolve(scheme);
  }

  /**
   * {@link handleUnauthorized} for clients that call {@link authorize} again before the retry:
   * true when a retry may succeed. Throws (after discarding the body) when none can.
   */
  async refresh(response: HttpResponse, scopes: string | string[]): Promise<boolean> {
    try {
      await this.handleUnauthorized(response, scopes);
      return true;
    } catch (e) {
      await response.discard().catch(() => {});
      throw e;
    }
  }

  /** The `Authorization` value for a request needing `scopes`; undefined means anonymous. */
  async authorize(scopes: string | string[]): Promise<string | undefined> {
    const scheme = await this.scheme();
    if (scheme.kind === "anonymous") return undefined;
    const creds = await this.#creds();
    if (scheme.kind === "basic") return basicAuthorization(creds);
    if (creds.registryToken) return `Bearer ${creds.registryToken}`;
    const list = normalizeScopes(scopes);
    return `Bearer ${await this.#token(scheme, this.#widened.get(list.join(" ")) ?? list, false)}`;
  }

  /**
   * Learns from a 401 `response` (only its headers are read; the caller discards the body) to a
   * request needing `scopes`, and returns the `Authorization` value to retry with once. Throws a
   * {@link KanikoError} when a retry cannot help (no credentials for Basic, Basic credentials refused).
   */
  async handleUnauthorized(
    response: Pick<HttpResponse, "headers">,
    scopes: string | string[],
  ): Promise<string> {
    const previous = await this.#scheme?.catch(() => undefined);
    const scheme = schemeOf(
      parseChallenges(response.headers.get("www-authenticate")),
      this.registry,
    );
    if (scheme.kind === "anonymous") throw this.unauthorizedError(scopes);
    this.#scheme = Promise.resolve(scheme);
    const creds = await this.#creds();
    if (scheme.kind === "basic") {
      const value = basicAuthorization(creds);
      if (!value || previous?.kind === "basic") throw this.unauthorizedError(scopes);
      return value;
    }
    if (creds.registryToken) throw this.unauthorizedError(scopes);
    const list = normalizeScopes(scopes);
    const challenge = findChallenge(
      parseChallenges(response.headers.get("www-authenticate")),
      "bearer",
    );
    const wanted = normalizeScopes([...list, ...(this.#widened.get(list.join(" ")) ?? [])]
      .concat(challenge?.params.scope ? challenge.params.scope.split(" ") : []));
    if (wanted.join(" ") !== list.join(" ")) this.#widened.set(list.join(" "), wanted);
    this.#tokens.delete(list.join(" "));
    this.#tokens.delete(wanted.join(" "));
    return `Bearer ${await this.#token(scheme, wanted, true)}`;
  }

  /** The error for a request to `scopes` that is still unauthorized after a retry. */
  unauthorizedError(scopes: string | string[]): KanikoError {
    const what = normalizeScopes(scopes).join(" ") || "the registry API";
    const creds = this.#resolved;
    if (!creds || isAnonymous(creds)) {
      const where = creds?.source ? ` in ${creds.source}` : "";
      return new KanikoError(
        `${this.registry} requires authentication for ${what} and no credentials were found${where}`,
        { hint: `run docker login ${this.registry}, or set DOCKER_CONFIG`, code: "UNAUTHORIZED" },
      );
    }
    return new KanikoError(
      `${this.registry} refused the credentials from ${
        creds.source ?? "the Docker config"
      } for ${what}`,
      {
        hint: "check that this account exists and may access the repository",
        code: "UNAUTHORIZED",
      },
    );
  }

  async #ping(): Promise<AuthScheme> {
    const { options, direction } = this.#options;
    const response = await this.#options.transport.send({
      method: "GET",
      url: `https://${apiHost(this.registry)}/v2/`,
      host: this.#options.registryHost ??
        (options ? hostSettings(options, this.registry, direction ?? "pull") : undefined),
    });
    await response.discard();
    if (response.status !== 401) return { kind: "anonymous" };
    return schemeOf(parseChallenges(response.headers.get("www-authenticate")), this.registry);
  }

  #creds(): Promise<Credentials> {
    if (!this.#credentials) {
      const given = this.#options.credentials;
      this.#credentials = (
        typeof given === "function"
          ? given()
          : given
          ? Promise.resolve(given)
          : resolveCredentials(this.registry, {
            dockerConfigDir: this.#options.dockerConfigDir ??
              this.#options.options?.dockerConfigDir,
          })
      ).then((c) => {
        // whatever a registry echoes back (error bodies, logs) must not show these
        for (const secret of secretsOf(c)) addSecret(secret);
        return (this.#resolved = c);
      });
      const pending = this.#credentials;
      pending.catch(() => this.#credentials === pending && (this.#credentials = undefined));
    }
    return this.#credentials;
  }

  #token(
    scheme: AuthScheme & { kind: "bearer" },
    scopes: string[],
    fresh: boolean,
  ): Promise<string> {
    const key = scopes.join(" ");
    const cached = this.#tokens.get(key);
    if (!fresh && cached && cached.expiresAt > this.#now()) return Promise.resolve(cached.token);
    let pending = this.#inflight.get(key);
    if (!pending) {
      pending = this.#fetchToken(scheme, scopes).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, pending);
    }
    return pending;
  }

  async #fetchToken(scheme: AuthScheme & { kind: "bearer" }, scopes: string[]): Promise<string> {
    const creds = await this.#creds();
    const started = this.#now();
    const refresh = creds.identityToken ? this.#refreshToken ?? creds.identityToken : undefined;
    let body = refresh ? await this.#postToken(scheme, scopes, creds, refresh) : undefined;
    body ??= await this.#getToken(scheme, scopes, creds);
    const token = (body.token || body.access_token) as string;
    const lifetime =
      (body.expires_in && body.expires_in > 0 ? body.expires_in : DEFAULT_TOKEN_LIFETIME) *
      1000;
    const margin = Math.min(30_000, lifetime / 10);
    this.#tokens.set(scopes.join(" "), { token, expiresAt: started + lifetime - margin });
    if (refresh && body.refresh_token) this.#refreshToken = body.refresh_token; // rotated
    return token;
  }

  /** GET realm?service=…&scope=…, with Basic credentials when there are some. */
  async #getToken(
    scheme: AuthScheme & { kind: "bearer" },
    scopes: string[],
    creds: Credentials,
  ): Promise<TokenResponse> {
    const url = new URL(scheme.realm);
    if (scheme.service) url.searchParams.set("service", scheme.service);
    for (const scope of scopes) url.searchParams.append("scope", scope);
    const headers: Record<string, string> = {};
    const basic = basicAuthorization(creds);
    if (basic) {
      headers.authorization = basic;
      url.searchParams.set("account", creds.username as string);
    }
    const response = await this.#send(url, { method: "GET", headers }, creds);
    return await this.#readToken(response, url, creds, basic ? "password" : "anonymous");
  }

  /** docker's OAuth2 refresh-token grant; undefined when the server has no OAuth2 endpoint. */
  async #postToken(
    scheme: AuthScheme & { kind: "bearer" },
    scopes: string[],
    creds: Credentials,
    refreshToken: string,
  ): Promise<TokenResponse | undefined> {
    const form = new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken });
    if (scheme.service) form.set("service", scheme.service);
    form.set("scope", scopes.join(" "));
    form.set("client_id", CLIENT_ID);
    const headers = { "content-type": "application/x-www-form-urlencoded" };
    const response = await this.#send(scheme.realm, {
      method: "POST",
      headers,
      body: form.toString(),
    }, creds);
    if (response.status === 404 || response.status === 405) {
      await response.discard();
      return undefined; // not every token server implements OAuth2: fall back to GET
    }
    return await this.#readToken(response, scheme.realm, creds, "identity token");
  }

  async #send(
    url: URL,
    request: { method: string; headers: Record<string, string>; body?: string },
    creds: Credentials,
  ): Promise<HttpResponse> {
    const { realmHost, options, direction } = this.#options;
    const settings = typeof realmHost === "function"
      ? realmHost(url.host)
      : realmHost ?? (options ? hostSettings(options, url.host, direction ?? "pull") : undefined);
    const host = {
      ...(settings ?? { skipVerify: false }),
      allowHttp: (settings?.allowHttp ?? false) || url.protocol === "http:",
    };
    try {
      return await this.#options.transport.send({ ...request, url: url.href, host });
    } catch (e) {
      throw new KanikoError(
        `cannot reach the token server ${url.host} of ${this.registry}: ${
          scrubSecrets(describeError(e), creds)
        }`,
        { cause: e, code: e instanceof KanikoError ? e.code : "NETWORK" },
      );
    }
  }

  async #readToken(
    response: HttpResponse,
    url: URL,
    creds: Credentials,
    method: "password" | "anonymous" | "identity token",
  ): Promise<TokenResponse> {
    const status = response.status;
    const text = await response.text(1 << 20).catch(() => "");
    const source = creds.source ?? "the Docker config";
    if ((status === 401 || status === 403 || (status === 400 && method === "identity token"))) {
      if (method === "password") {
        throw new KanikoError(
          `authentication to ${this.registry} failed: invalid username or password`,
          { hint: `check the credentials in ${source}`, code: "UNAUTHORIZED" },
        );
      }
      if (method === "identity token") {
        throw new KanikoError(
          `authentication to ${this.registry} failed: the identity token was refused`,
          { hint: `log in again; the token comes from ${source}`, code: "UNAUTHORIZED" },
        );
      }
      throw this.unauthorizedError([...url.searchParams.getAll("scope")]);
    }
    if (status !== 200) {
      const detail = scrubSecrets(oneLine(text).slice(0, 200), creds);
      throw new KanikoError(
        `token server ${url.host} of ${this.registry} answered HTTP ${status}${
          detail ? `: ${detail}` : ""
        }`,
        { hint: "retry later, or check the registry's auth service", code: "TOKEN_SERVER" },
      );
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = undefined;
    }
    const parsed = TokenResponseSchema.safeParse(value);
    if (!parsed.success) {
      throw new KanikoError(`token server ${url.host} of ${this.registry} sent an invalid answer`, {
        hint: 'expected JSON {"token": …, "expires_in": …}',
        code: "TOKEN_SERVER",
      });
    }
    return parsed.data;
  }

  #now(): number {
    return this.#options.now ? this.#options.now() : Date.now();
  }
}

/** The scheme a registry's challenges ask for: Bearer (with a valid realm) over Basic. */
function schemeOf(challenges: Challenge[], registry: string): AuthScheme {
  const bearer = findChallenge(challenges, "bearer");
  if (bearer?.params.realm) {
    let realm: URL | undefined;
    try {
      realm = new URL(bearer.params.realm);
    } catch {
      realm = undefined;
    }
    if (!realm || (realm.protocol !== "https:" && realm.protocol !== "http:")) {
      throw new KanikoError(
        `${registry} sent an invalid token realm "${oneLine(bearer.params.realm).slice(0, 200)}"`,
        { hint: "the registry's auth configuration is broken; contact its operator" },
      );
    }
    return { kind: "bearer", realm, service: bearer.params.service };
  }
  if (findChallenge(challenges, "basic")) return { kind: "basic" };
  return { kind: "anonymous" };
}

const pools = new WeakMap<HttpTransport, Map<string, Authenticator>>();

/**
 * The process-wide {@link Authenticator} for `registry` over `options.transport` (created on
 * first use with these options; later calls return the same one).
 */
export function authenticatorFor(registry: string, options: AuthenticatorOptions): Authenticator {
  let pool = pools.get(options.transport);
  if (!pool) pools.set(options.transport, pool = new Map());
  let auth = pool.get(registry);
  if (!auth) pool.set(registry, auth = new Authenticator(registry, options));
  return auth;
}
