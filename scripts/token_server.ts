/**
 * A Docker registry token server (the "token" auth of distribution 2.8) for the test bed.
 *
 * - `GET /token?service=S&scope=repository:NAME:pull,push[&scope=…][&offline_token=true]`, with
 *   optional Basic credentials. Anonymous callers get `pull` only; authenticated ones get `pull`,
 *   `push`, `delete` (and `*`) on repositories and `registry:catalog:*`. Bad credentials give 401
 *   with a JSON error. The answer is `{token, access_token, expires_in, issued_at}` (plus a
 *   `refresh_token` when authenticated and `offline_token=true`).
 * - `POST /token` (form): docker's OAuth2 flow, `grant_type=password` (`username`, `password`;
 *   `access_type=offline` adds a `refresh_token`) and `grant_type=refresh_token`.
 * - The token is an RS256 JWT whose header carries `x5c` (base64 DER of the signing certificate,
 *   which is the registry's `rootcertbundle`), with claims iss, sub, aud, exp, nbf, iat, jti, access.
 * - Token lifetime: `--ttl` / `$TOKEN_TTL` / config `ttl` (default 300 s); per request with the
 *   query or form parameter `ttl=N`, or with the realm path `/ttl/N/token` (so a registry whose
 *   realm is `http://HOST/ttl/2/token` hands out 2-second tokens). N may be negative: distribution
 *   2.8 accepts a token up to 60 s after its `exp` (clock-skew leeway), so for a token that is
 *   already refused a few seconds after issue use e.g. `ttl=-57`.
 * - `GET /healthz` answers `ok`.
 *
 * Run: `deno run -A scripts/token_server.ts --config FILE [--port 0] [--port-file F] [--ttl N]`
 * (`--help` lists the options),
 * where FILE is JSON `{key, cert, issuer, service, users: {name: password}, ttl?}` (paths of the
 * PEM key and certificate). Flags `--key --cert --issuer --service --user NAME:PASS` work too.
 * It listens on 127.0.0.1 (port 0: a free one) and writes the port to `--port-file`.
 * @module
 */
import { Hono } from "hono";
import { createPrivateKey, type KeyObject, randomBytes, sign } from "node:crypto";
import { z } from "zod";
import type { CommandDef } from "./_flags.ts";

/** Settings of the token server. */
export interface TokenServerOptions {
  /** PEM private key that signs the tokens (RSA). */
  keyPem: string;
  /** PEM certificate of that key; its DER goes into the JWT header's `x5c`. */
  certPem: string;
  issuer: string;
  service: string;
  /** Accepted credentials: user → password. */
  users: Record<string, string>;
  /** Default token lifetime in seconds. */
  ttl: number;
}

/** One entry of the JWT `access` claim. */
export interface Access {
  type: string;
  name: string;
  actions: string[];
}

const TTL_MIN = -3600;
const TTL_MAX = 86400;

function b64url(data: Uint8Array | string): string {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Base64 DER of the first certificate in a PEM text. */
export function pemToDerBase64(pem: string): string {
  const m = pem.match(/-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/);
  if (!m) throw new Error("no certificate in PEM");
  return m[1].replace(/\s+/g, "");
}

/** Parses scope strings (`type:name:actions`, several per string separated by spaces). */
export function parseScopes(scopes: string[]): Access[] {
  const out: Access[] = [];
  for (const s of scopes.flatMap((x) => x.split(" ")).filter(Boolean)) {
    const first = s.indexOf(":");
    const last = s.lastIndexOf(":");
    if (first < 0 || last === first) continue;
    out.push({
      type: s.slice(0, first),
      name: s.slice(first + 1, last),
      actions: s.slice(last + 1).split(",").filter(Boolean),
    });
  }
  return out;
}

/** What a caller (anonymous when `user` is undefined) is granted of what it asked for. */
export function grant(requested: Access[], user: string | undefined): Access[] {
  const out: Access[] = [];
  for (const r of requested) {
    const type = r.type.replace(/\(.*\)$/, "");
    let allowed: string[];
    if (type === "repository") {
      allowed = user === undefined ? ["pull"] : ["pull", "push", "delete", "*"];
    } else if (type === "registry" && r.name === "catalog") {
      allowed = user === undefined ? [] : ["*"];
    } else {
      allowed = [];
    }
    const actions = r.actions.filter((a) => allowed.includes(a));
    // Keep denied entries out entirely, as docker/auth servers do for empty grants.
    if (actions.length) out.push({ type: r.type, name: r.name, actions });
  }
  return out;
}

function parseTtl(value: string | undefined | null, fallback: number): number | undefined {
  if (value === undefined || value === null || value === "") return fallback;
  if (!/^-?\d+$/.test(value)) return undefined;
  const n = Number(value);
  return n >= TTL_MIN && n <= TTL_MAX ? n : undefined;
}

function parseBasic(header: string | undefined): { user: string; pass: string } | undefined {
  if (!header || !/^basic /i.test(header)) return undefined;
  try {
    const decoded = atob(header.slice(6).trim());
    const i = decoded.indexOf(":");
    if (i < 0) return undefined;
    return { user: decoded.slice(0, i), pass: decoded.slice(i + 1) };
  } catch {
    return undefined;
  }
}

const unauthorized = {
  errors: [{ code: "UNAUTHORIZED", message: "invalid username or password", detail: null }],
};

/** The token server's hono app (exported so tests can run it in-process). */
export function createTokenApp(opts: TokenServerOptions): Hono {
  const key: KeyObject = createPrivateKey(opts.keyPem);
  const x5c = [pemToDerBase64(opts.certPem)];
  /** refresh token → user. In memory: lost on restart, as a real server's session would be. */
  const refreshTokens = new Map<string, string>();

  function issue(user: string | undefined, access: Access[], ttl: number) {
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: "JWT", alg: "RS256", x5c };
    const claims = {
      iss: opts.issuer,
      sub: user ?? "",
      aud: opts.service,
      exp: now + ttl,
      nbf: now - 1,
      iat: now,
      jti: b64url(randomBytes(16)),
      access,
    };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = sign("sha256", new TextEncoder().encode(input), key);
    return { token: `${input}.${b64url(sig)}`, issuedAt: new Date(now * 1000).toISOString() };
  }

  function checkUser(user: string, pass: string): boolean {
    return Object.hasOwn(opts.users, user) && opts.users[user] === pass;
  }

  function newRefreshToken(user: string): string {
    const t = b64url(randomBytes(24));
    refreshTokens.set(t, user);
    return t;
  }

  const app = new Hono();

  app.get("/healthz", (c) => c.text("ok"));

  const getToken = (ttlFromPath: string | undefined) => (c: any) => {
    const url = new URL(c.req.url);
    const ttl = parseTtl(url.searchParams.get("ttl") ?? ttlFromPath, opts.ttl);
    if (ttl === undefined) {
      return c.json({ errors: [{ code: "INVALID", message: "bad ttl" }] }, 400);
    }
    const service = url.searchParams.get("service");
    if (service !== null && service !== opts.service) {
      return c.json(
        { errors: [{ code: "INVALID", message: `unknown service "${service}"` }] },
        400,
      );
    }
    let user: string | undefined;
    const auth = c.req.header("authorization");
    if (auth) {
      const creds = parseBasic(auth);
      if (!creds || !checkUser(creds.user, creds.pass)) {
        return c.json(unauthorized, 401, { "WWW-Authenticate": 'Basic realm="testbed-token"' });
      }
      user = creds.user;
    }
    const access = grant(parseScopes(url.searchParams.getAll("scope")), user);
    const { token, issuedAt } = issue(user, access, ttl);
    const body: Record<string, unknown> = {
      token,
      access_token: token,
      expires_in: ttl,
      issued_at: issuedAt,
    };
    if (user !== undefined && url.searchParams.get("offline_token") === "true") {
      body.refresh_token = newRefreshToken(user);
    }
    return c.json(body);
  };

  const postToken = (ttlFromPath: string | undefined) => async (c: any) => {
    const url = new URL(c.req.url);
    let form: URLSearchParams;
    try {
      form = new URLSearchParams(await c.req.text());
    } catch {
      return c.json({ error: "invalid_request" }, 400);
    }
    const ttl = parseTtl(form.get("ttl") ?? url.searchParams.get("ttl") ?? ttlFromPath, opts.ttl);
    if (ttl === undefined) {
      return c.json({ error: "invalid_request", error_description: "ttl" }, 400);
    }
    const service = form.get("service");
    if (service !== null && service !== opts.service) {
      return c.json({ error: "invalid_request", error_description: "unknown service" }, 400);
    }
    let user: string;
    let refreshToken: string | undefined;
    switch (form.get("grant_type")) {
      case "password": {
        const u = form.get("username") ?? "";
        if (!checkUser(u, form.get("password") ?? "")) return c.json(unauthorized, 401);
        user = u;
        if (form.get("access_type") === "offline") refreshToken = newRefreshToken(user);
        break;
      }
      case "refresh_token": {
        const t = form.get("refresh_token") ?? "";
        const u = refreshTokens.get(t);
        if (u === undefined) return c.json(unauthorized, 401);
        user = u;
        refreshToken = t;
        break;
      }
      default:
        return c.json({ error: "unsupported_grant_type" }, 400);
    }
    const access = grant(parseScopes(form.getAll("scope")), user);
    const { token, issuedAt } = issue(user, access, ttl);
    const body: Record<string, unknown> = {
      access_token: token,
      token,
      expires_in: ttl,
      issued_at: issuedAt,
      scope: access.map((a) => `${a.type}:${a.name}:${a.actions.join(",")}`).join(" "),
    };
    if (refreshToken !== undefined) body.refresh_token = refreshToken;
    return c.json(body);
  };

  app.get("/token", getToken(undefined));
  app.post("/token", postToken(undefined));
  app.get("/ttl/:ttl/token", (c) => getToken(c.req.param("ttl"))(c));
  app.post("/ttl/:ttl/token", (c) => postToken(c.req.param("ttl"))(c));
  return app;
}

const ConfigSchema = z.object({
  key: z.string(),
  cert: z.string(),
  issuer: z.string(),
  service: z.string(),
  users: z.record(z.string(), z.string()),
  ttl: z.number().int().optional(),
});

/** The command line (`--help` prints it). */
const COMMAND: CommandDef = {
  name: "token_server",
  flags: {
    config: { value: "file", help: "JSON config {key, cert, issuer, service, users, ttl}" },
    key: { value: "file", help: "PEM signing key" },
    cert: { value: "file", help: "PEM signing certificate" },
    issuer: { value: "iss", help: "token issuer", default: "testbed-issuer" },
    service: { value: "svc", help: "registry service name", default: "testbed-registry" },
    user: {
      value: "name:pass",
      help: "accepted credentials (repeatable)",
      multiple: true,
      default: [],
    },
    ttl: { value: "seconds", help: "default token lifetime (also $TOKEN_TTL)" },
    host: { value: "host", help: "listen address", default: "127.0.0.1" },
    port: { value: "port", help: "listen port (0: a free one)", default: "0" },
    "port-file": { value: "file", help: "write the bound port here" },
  },
};

/** The flag values of {@link COMMAND}. */
interface Flags {
  config?: string;
  key?: string;
  cert?: string;
  issuer: string;
  service: string;
  user: string[];
  ttl?: string;
  host: string;
  port: string;
  "port-file"?: string;
}

async function main(args: string[]): Promise<void> {
  // Loaded only when run: the command line's parser brings `node:util` (see scripts/_flags.ts).
  const { parseFlags } = await import("./_flags.ts");
  const o = parseFlags(COMMAND, args) as Flags | undefined;
  if (!o) return;
  const settings = await settingsOf(o);
  const app = createTokenApp(settings);
  const server = Deno.serve({
    hostname: o.host,
    port: Number(o.port),
    onListen: ({ hostname, port }) => {
      console.log(`token server listening on http://${hostname}:${port} (ttl ${settings.ttl}s)`);
      const portFile = o["port-file"];
      if (portFile) {
        // Write then rename, so a reader never sees a partial file.
        Deno.writeTextFileSync(`${portFile}.tmp`, `${port}\n`);
        Deno.renameSync(`${portFile}.tmp`, portFile);
      }
    },
  }, (req) => {
    const started = Date.now();
    return Promise.resolve(app.fetch(req)).then((res) => {
      const u = new URL(req.url);
      console.log(`${req.method} ${u.pathname} ${res.status} ${Date.now() - started}ms`);
      return res;
    });
  });
  const shutdown = () => {
    server.shutdown().finally(() => Deno.exit(0));
  };
  Deno.addSignalListener("SIGTERM", shutdown);
  Deno.addSignalListener("SIGINT", shutdown);
  await server.finished;
}

/** The server's settings from the flags, the `--config` file and `$TOKEN_TTL`. */
async function settingsOf(o: Flags): Promise<TokenServerOptions> {
  const cfg = o.config
    ? ConfigSchema.parse(JSON.parse(await Deno.readTextFile(o.config)))
    : undefined;
  const keyPath = o.key ?? cfg?.key;
  const certPath = o.cert ?? cfg?.cert;
  if (!keyPath || !certPath) throw new Error("--key and --cert (or --config) are required");
  const users: Record<string, string> = { ...(cfg?.users ?? {}) };
  for (const u of o.user) {
    const i = u.indexOf(":");
    users[u.slice(0, i)] = u.slice(i + 1);
  }
  const ttlText = o.ttl ?? Deno.env.get("TOKEN_TTL");
  const ttl = ttlText !== undefined ? parseTtl(ttlText, 300) : (cfg?.ttl ?? 300);
  if (ttl === undefined) throw new Error(`bad ttl ${ttlText}`);
  return {
    keyPem: await Deno.readTextFile(keyPath),
    certPem: await Deno.readTextFile(certPath),
    issuer: cfg?.issuer ?? o.issuer,
    service: cfg?.service ?? o.service,
    users,
    ttl,
  };
}

if (import.meta.main) {
  try {
    await main(Deno.args);
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
