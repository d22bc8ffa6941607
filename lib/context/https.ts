/**
 * HTTP(S) downloads for contexts and Dockerfile URLs, through the registry client's
 * {@link Transport} (streamed, redirects followed, TLS settings per host, one-line errors).
 * `user:password@` in a URL becomes a Basic `Authorization` header, as Go's `http.Get` does.
 * @module
 */
import { KanikoError } from "../errors.ts";
import { addSecret } from "../log.ts";
import type { HostSettings, HttpResponse, HttpTransport } from "../registry/mod.ts";
import { Transport } from "../registry/transport.ts";
import { PROGRAM_NAME, VERSION } from "../version.ts";
import type { Credentials } from "./source.ts";

/** HTTP settings for remote contexts and Dockerfiles. */
export interface HttpOptions {
  /** The transport to use (default: a new {@link Transport}, closed afterwards). */
  transport?: HttpTransport;
  /** TLS settings per host (`name[:port]`), e.g. from the registry flags. */
  hostSettings?: (host: string) => HostSettings;
}

/**
 * GETs `url` and returns the response when it is 200, else throws naming `what`. The caller
 * consumes the body; `close()` releases the transport when it was created here.
 */
export async function httpGet(
  url: string,
  what: string,
  options: HttpOptions & { credentials?: Credentials; signal?: AbortSignal },
): Promise<{ response: HttpResponse; close: () => void }> {
  const own = options.transport
    ? undefined
    : new Transport({ userAgent: `${PROGRAM_NAME}/${VERSION}` });
  const transport = options.transport ?? own!;
  const close = () => own?.close();
  const parsed = new URL(url);
  const headers: Record<string, string> = {};
  if (options.credentials) {
    const { username, password } = options.credentials;
    addSecret(password);
    headers.authorization = "Basic " + btoa(String.fromCharCode(
      ...new TextEncoder().encode(`${username}:${password}`),
    ));
  }
  const host = options.hostSettings?.(parsed.host) ?? { allowHttp: true, skipVerify: false };
  let response: HttpResponse;
  try {
    response = await transport.send({
      method: "GET",
      url: parsed.toString(),
      headers,
      host: { ...host, allowHttp: true },
      signal: options.signal,
    });
  } catch (e) {
    close();
    if (e instanceof KanikoError) {
      const hint = options.hostSettings || e.code !== "TLS"
        ? e.hint
        : `if ${parsed.host} uses a private CA, point DENO_CERT at its certificate (PEM)`;
      throw new KanikoError(`${what}: ${e.message}`, { hint, code: e.code, cause: e });
    }
    throw e;
  }
  if (response.status !== 200) {
    await response.discard();
    close();
    const hint = response.status === 401 || response.status === 403
      ? "the server wants credentials: put them in the URL (https://USER:PASSWORD@HOST/…)"
      : response.status === 404
      ? "check the URL"
      : undefined;
    throw new KanikoError(`${what}: the server answered HTTP ${response.status}`, { hint });
  }
  return { response, close };
}
