/**
 * The test bed's description of itself: where its state lives and the `env.json` it writes for
 * tests and shells (zod schema, so readers validate what they get).
 * @module
 */
import { z } from "zod";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The four registry variants the test bed runs. */
export const VARIANTS = ["plain", "tls", "basic", "token"] as const;
/** One registry variant. */
export type Variant = typeof VARIANTS[number];

/** The six busybox platforms: Debian arch → OCI platform and the per-arch tag. */
export const ARCHES = [
  { deb: "amd64", architecture: "amd64", variant: undefined, tag: "amd64" },
  { deb: "arm64", architecture: "arm64", variant: "v8", tag: "arm64" },
  { deb: "armhf", architecture: "arm", variant: "v7", tag: "armv7" },
  { deb: "i386", architecture: "386", variant: undefined, tag: "386" },
  { deb: "ppc64el", architecture: "ppc64le", variant: undefined, tag: "ppc64le" },
  { deb: "s390x", architecture: "s390x", variant: undefined, tag: "s390x" },
] as const;
/** One busybox platform. */
export type Arch = typeof ARCHES[number];

/** Test credentials (htpasswd, token server, Docker config). */
export const USER = "testuser";
/** Test credentials (htpasswd, token server, Docker config). */
export const PASS = "testpass";
/** `service` of the token-auth registry (the token's `aud`). */
export const TOKEN_SERVICE = "testbed-registry";
/** `iss` of the tokens. */
export const TOKEN_ISSUER = "testbed-issuer";
/** Basic-auth realm of the htpasswd registry. */
export const BASIC_REALM = "testbed-realm";
/** Repository the busybox images are pushed to. */
export const BUSYBOX_REPO = "library/busybox";

/** The repository root (this file is `<repo>/scripts/testbed/env.ts`). */
export const REPO_ROOT: string = resolve(fileURLToPath(new URL("../..", import.meta.url)));

/** The state directory: `$TESTBED_DIR`, else `<repo>/.testbed`. */
export function stateDir(): string {
  const dir = Deno.env.get("TESTBED_DIR");
  return resolve(dir && dir.length > 0 ? dir : join(REPO_ROOT, ".testbed"));
}

/** Where `env.json` lives in a state directory. */
export function envJsonPath(dir: string = stateDir()): string {
  return join(dir, "env.json");
}

const digest = z.string().regex(/^sha256:[a-f0-9]{64}$/);

const RegistrySchema = z.object({
  /** `127.0.0.1:PORT`, as used in image references. */
  host: z.string(),
  /** Base URL, `http://…` or `https://…`. */
  url: z.string(),
  tls: z.boolean(),
  auth: z.enum(["none", "basic", "token"]),
  pid: z.number().int(),
  log: z.string(),
  storage: z.string(),
});

const ArchEntrySchema = z.object({
  /** Per-arch tag, e.g. `armv7`. */
  tag: z.string(),
  debArch: z.string(),
  platform: z.object({
    architecture: z.string(),
    os: z.string(),
    variant: z.string().optional(),
  }),
  /** OCI image manifest (what the OCI index points at). */
  digest,
  /** Docker v2s2 manifest (what the Docker manifest list points at). */
  dockerDigest: digest,
  config: digest,
  layer: digest,
  layerSize: z.number().int(),
  diffId: digest,
  debVersion: z.string(),
});

/** Everything a test needs to know about a running test bed. */
export const TestbedEnvSchema = z.object({
  version: z.literal(1),
  stateDir: z.string(),
  registries: z.object({
    plain: RegistrySchema,
    tls: RegistrySchema,
    basic: RegistrySchema,
    token: RegistrySchema,
  }),
  tokenServer: z.object({
    url: z.string(),
    /** The `realm` of the token registry's Bearer challenge. */
    realm: z.string(),
    service: z.string(),
    issuer: z.string(),
    /** Default token lifetime in seconds. */
    ttl: z.number().int(),
    pid: z.number().int(),
    log: z.string(),
    /** Self-signed token-signing certificate (the registry's `rootcertbundle`) and key. */
    cert: z.string(),
    key: z.string(),
    config: z.string(),
  }),
  /** Test CA (PEM) that signed the registries' server certificate. */
  ca: z.string(),
  /** Directory with `ca.crt` only, for `skopeo --cert-dir`. */
  certDir: z.string(),
  serverCert: z.string(),
  serverKey: z.string(),
  /** A second CA and a client certificate it signed, for mTLS tests (no registry uses them). */
  clientCa: z.string(),
  clientCert: z.string(),
  clientKey: z.string(),
  htpasswd: z.string(),
  /** `DOCKER_CONFIG` directory; its `config.json` has `auths` for the basic and token registries. */
  dockerConfigDir: z.string(),
  /** `$dockerConfigDir/config.json`, also usable as `skopeo --authfile`. */
  authFile: z.string(),
  user: z.string(),
  pass: z.string(),
  busybox: z.object({
    repository: z.string(),
    /** Digest of the OCI index (tag `latest`). */
    indexDigest: digest,
    /** Digest of the Docker manifest list (tag `docker`). */
    dockerListDigest: digest,
    /** Tags pushed to every registry. */
    tags: z.array(z.string()),
    arches: z.array(ArchEntrySchema),
  }),
  /** OCI image layout holding every busybox manifest, tagged as in the registries. */
  ociLayout: z.string(),
  /** Cached `busybox-static_*.deb` files (inputs of the image build). */
  debsDir: z.string(),
  /** How the images were pushed: `cli` (our `cli.ts copy`) or `skopeo` (debug override). */
});
/** Everything a test needs to know about a running test bed. */
export type TestbedEnv = z.infer<typeof TestbedEnvSchema>;
/** One registry entry of {@link TestbedEnv}. */
export type RegistryInfo = z.infer<typeof RegistrySchema>;
/** One busybox arch entry of {@link TestbedEnv}. */
export type ArchInfo = z.infer<typeof ArchEntrySchema>;

/** Reads and validates `env.json`. */
export async function readEnv(dir: string = stateDir()): Promise<TestbedEnv> {
  const text = await Deno.readTextFile(envJsonPath(dir));
  return TestbedEnvSchema.parse(JSON.parse(text));
}

/** Shell-quotes a value for `env.sh`. */
function shq(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The `env.sh` text for a {@link TestbedEnv} (`. .testbed/env.sh`). */
export function envSh(env: TestbedEnv): string {
  const vars: Record<string, string> = {
    TESTBED_DIR: env.stateDir,
    TESTBED_PLAIN_REGISTRY: env.registries.plain.host,
    TESTBED_TLS_REGISTRY: env.registries.tls.host,
    TESTBED_BASIC_REGISTRY: env.registries.basic.host,
    TESTBED_TOKEN_REGISTRY: env.registries.token.host,
    TESTBED_TOKEN_REALM: env.tokenServer.realm,
    TESTBED_TOKEN_SERVICE: env.tokenServer.service,
    TESTBED_CA: env.ca,
    TESTBED_CERT_DIR: env.certDir,
    TESTBED_CLIENT_CERT: env.clientCert,
    TESTBED_CLIENT_KEY: env.clientKey,
    TESTBED_DOCKER_CONFIG: env.dockerConfigDir,
    TESTBED_AUTHFILE: env.authFile,
    TESTBED_USER: env.user,
    TESTBED_PASS: env.pass,
    TESTBED_BUSYBOX_INDEX_DIGEST: env.busybox.indexDigest,
    TESTBED_BUSYBOX_DOCKER_LIST_DIGEST: env.busybox.dockerListDigest,
    TESTBED_OCI_LAYOUT: env.ociLayout,
  };
  for (const a of env.busybox.arches) {
    vars[`TESTBED_BUSYBOX_${a.tag.toUpperCase()}_DIGEST`] = a.digest;
  }
  const lines = ["# Generated by scripts/testbed.ts; source it: . .testbed/env.sh"];
  for (const [k, v] of Object.entries(vars)) lines.push(`export ${k}=${shq(v)}`);
  return lines.join("\n") + "\n";
}
