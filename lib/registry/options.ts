/**
 * Registry connection settings, as the registry flags of the contract set them (Kaniko's names
 * and meanings), and the per-host view the transport needs.
 * @module
 */

/** Settings for every command that talks to a registry. */
export interface RegistryOptions {
  /** `--insecure`: push to registries over plain HTTP. */
  insecure: boolean;
  /** `--insecure-pull`: pull from registries over plain HTTP. */
  insecurePull: boolean;
  /** `--insecure-registry`: hosts reached over plain HTTP for pulls and pushes. */
  insecureRegistries: string[];
  /** `--skip-tls-verify`: do not verify TLS certificates (pushes, and pulls as in Kaniko). */
  skipTlsVerify: boolean;
  /** `--skip-tls-verify-pull`: do not verify TLS certificates when pulling. */
  skipTlsVerifyPull: boolean;
  /** `--skip-tls-verify-registry`: hosts whose certificates are not verified. */
  skipTlsVerifyRegistries: string[];
  /** `--registry-certificate HOST=PATH`: extra CA (PEM file) trusted for a host. */
  registryCertificates: Record<string, string>;
  /** `--registry-client-cert HOST=CERT,KEY`: client certificate for a host. */
  registryClientCerts: Record<string, { cert: string; key: string }>;
  /** `--registry-mirror`: mirrors of the default registry (docker.io), tried in order. */
  registryMirrors: string[];
  /** `--registry-map ORIG=NEW[/prefix];…`: replacements of a registry, tried in order. */
  registryMap: Record<string, string[]>;
  /** `--skip-default-registry-fallback`: fail instead of falling back to the original registry. */
  skipDefaultRegistryFallback: boolean;
  /** Directory of `config.json` (`$DOCKER_CONFIG`, default `~/.docker`). */
  dockerConfigDir?: string;
  /** `--push-retry`: retries of a failed push request. */
  pushRetry: number;
  /** `--push-retry-initial-delay` in milliseconds. */
  pushRetryInitialDelay: number;
  /** `--push-retry-max-delay` in milliseconds. */
  pushRetryMaxDelay: number;
  /** `--image-download-retry`: retries of a failed pull request. */
  imageDownloadRetry: number;
  /**
   * Upload chunk size in bytes. 0 (default): one monolithic PUT with a Content-Length; otherwise
   * chunked PATCH uploads (ECR needs at least 5 MiB).
   */
  uploadChunkSize: number;
  /** Blobs uploaded or downloaded at once. */
  concurrency: number;
}

/** Defaults of {@link RegistryOptions} (Kaniko's, plus retry delays and concurrency). */
export function defaultRegistryOptions(): RegistryOptions {
  return {
    insecure: false,
    insecurePull: false,
    insecureRegistries: [],
    skipTlsVerify: false,
    skipTlsVerifyPull: false,
    skipTlsVerifyRegistries: [],
    registryCertificates: {},
    registryClientCerts: {},
    registryMirrors: [],
    registryMap: {},
    skipDefaultRegistryFallback: false,
    dockerConfigDir: undefined,
    pushRetry: 0,
    pushRetryInitialDelay: 1000,
    pushRetryMaxDelay: 30000,
    imageDownloadRetry: 0,
    uploadChunkSize: 0,
    concurrency: 4,
  };
}

/** Whether a host is used for pulling or pushing (Kaniko distinguishes the two). */
export type Direction = "pull" | "push";

/** What the transport needs to know about one registry host. */
export interface HostSettings {
  /** Try plain HTTP when HTTPS cannot connect (insecure flags, loopback hosts). */
  allowHttp: boolean;
  /** Do not verify the TLS certificate. */
  skipVerify: boolean;
  /** Extra CA certificate path (PEM). */
  caFile?: string;
  /** Client certificate and key paths (PEM). */
  clientCert?: { cert: string; key: string };
}

/** True for `localhost`, `127.0.0.0/8` and `::1` hosts, with or without a port. */
export function isLoopbackHost(host: string): boolean {
  const name = host.startsWith("[") ? host.slice(1, host.indexOf("]")) : host.replace(/:\d+$/, "");
  return name === "localhost" || name === "::1" || /^127\.\d+\.\d+\.\d+$/.test(name);
}

/** The settings for `host` (`name[:port]`) in `direction`. */
export function hostSettings(
  options: RegistryOptions,
  host: string,
  direction: Direction,
): HostSettings {
  const listed = (list: string[]) => list.includes(host);
  const insecure = listed(options.insecureRegistries) ||
    (direction === "push" ? options.insecure : options.insecurePull);
  const skipVerify = listed(options.skipTlsVerifyRegistries) || options.skipTlsVerify ||
    (direction === "pull" && options.skipTlsVerifyPull);
  return {
    allowHttp: insecure || isLoopbackHost(host),
    skipVerify,
    caFile: options.registryCertificates[host],
    clientCert: options.registryClientCerts[host],
  };
}
