/**
 * One-time setup of the test bed: Debian packages, the PKI (test CA, server leaf, client CA and
 * client certificate, token-signing certificate), the htpasswd file and the Docker config.
 * @module
 */
import { join } from "node:path";
import { BASIC_REALM, PASS, USER } from "./env.ts";
import { exists } from "./fs.ts";
import { procCmdline, run } from "./proc.ts";

/** Debian packages the test bed needs, each with a file that proves it is installed. */
const PACKAGES: Record<string, string> = {
  "docker-registry": "/usr/bin/docker-registry",
  skopeo: "/usr/bin/skopeo",
  umoci: "/usr/bin/umoci",
  "busybox-static": "/bin/busybox",
  "apache2-utils": "/usr/bin/htpasswd",
  openssl: "/usr/bin/openssl",
  // What the tests of contexts, layers and builds use besides the registries.
  git: "/usr/bin/git",
  zstd: "/usr/bin/zstd",
  "xz-utils": "/usr/bin/xz",
  bzip2: "/usr/bin/bzip2",
  attr: "/usr/bin/getfattr",
  "util-linux": "/usr/bin/unshare",
  buildah: "/usr/bin/buildah",
};

async function installedPackages(names: string[]): Promise<Set<string>> {
  const r = await run("dpkg-query", ["-W", "-f=${Package} ${db:Status-Abbrev}\\n", ...names], {
    allowFail: true,
  });
  const ok = new Set<string>();
  for (const line of r.stdout.split("\n")) {
    const [pkg, status] = line.split(" ");
    if (status?.startsWith("ii")) ok.add(pkg.replace(/:.*$/, ""));
  }
  return ok;
}

/**
 * Installs the missing packages (root only; otherwise throws naming them). The install runs with
 * a `policy-rc.d` that refuses service starts (created for the duration when the machine has none),
 * so docker-registry's postinst cannot start the broken-by-design system registry.
 */
export async function ensurePackages(log: (s: string) => void): Promise<void> {
  const names = Object.keys(PACKAGES);
  const installed = await installedPackages(names);
  const missing = names.filter((p) => !installed.has(p) || !exists(PACKAGES[p]));
  if (missing.length === 0) return;
  if (Deno.uid() !== 0) {
    throw new Error(
      `missing packages: ${missing.join(" ")}; install them as root (apt-get install)`,
    );
  }
  log(`installing ${missing.join(" ")}`);
  const policy = "/usr/sbin/policy-rc.d";
  const ownPolicy = !exists(policy);
  if (ownPolicy) {
    await Deno.writeTextFile(
      policy,
      "#!/bin/sh\n# testbed: no service starts during install\nexit 101\n",
      {
        mode: 0o755,
      },
    );
  }
  try {
    const env = { DEBIAN_FRONTEND: "noninteractive" };
    const args = ["install", "-y", "-o", "DPkg::Lock::Timeout=600", ...missing];
    let r = await run("apt-get", args, { env, allowFail: true });
    if (r.code !== 0) {
      log("apt-get install failed; running apt-get update and retrying");
      await run("apt-get", ["-o", "DPkg::Lock::Timeout=600", "update"], { env, allowFail: true });
      r = await run("apt-get", args, { env });
    }
  } finally {
    if (ownPolicy) await Deno.remove(policy).catch(() => {});
  }
  await stopSystemRegistry(log);
}

/**
 * If a service manager started Debian's own registry (`/etc/docker/registry/config.yml`), stop it
 * through the service manager: our instances use their own configs and free ports anyway.
 */
async function stopSystemRegistry(log: (s: string) => void): Promise<void> {
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const argv = procCmdline(Number(entry.name));
    if (
      argv?.some((a) => a.endsWith("docker-registry")) &&
      argv.includes("/etc/docker/registry/config.yml")
    ) {
      log(`a system docker-registry (pid ${entry.name}) runs; stopping the service`);
      await run("service", ["docker-registry", "stop"], { allowFail: true });
      return;
    }
  }
}

/** Paths of the PKI files, all PEM, under `<state>/pki`. */
export interface Pki {
  dir: string;
  ca: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  clientCa: string;
  clientCaKey: string;
  clientCert: string;
  clientKey: string;
  tokenCert: string;
  tokenKey: string;
  /** `<state>/certs.d` with `ca.crt`, for `skopeo --cert-dir`. */
  certDir: string;
}

/** The PKI paths of a state directory. */
export function pkiPaths(state: string): Pki {
  const dir = join(state, "pki");
  return {
    dir,
    ca: join(dir, "ca.crt"),
    caKey: join(dir, "ca.key"),
    serverCert: join(dir, "server.crt"),
    serverKey: join(dir, "server.key"),
    clientCa: join(dir, "client-ca.crt"),
    clientCaKey: join(dir, "client-ca.key"),
    clientCert: join(dir, "client.crt"),
    clientKey: join(dir, "client.key"),
    tokenCert: join(dir, "token.crt"),
    tokenKey: join(dir, "token.key"),
    certDir: join(state, "certs.d"),
  };
}

/** Splits a literal argument list on spaces. */
function words(s: string): string[] {
  return s.split(" ");
}

async function selfSignedCa(key: string, cert: string, cn: string): Promise<void> {
  await run("openssl", [
    ...words("req -x509 -newkey rsa:2048 -nodes -days 3650"),
    ...["-keyout", key, "-out", cert, "-subj", `/CN=${cn}`],
    ...["-addext", "basicConstraints=critical,CA:TRUE"],
    ...["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
  ]);
}

async function leaf(
  dir: string,
  key: string,
  cert: string,
  cn: string,
  ext: string,
  caCert: string,
  caKey: string,
): Promise<void> {
  const csr = `${cert}.csr`;
  const extFile = `${cert}.ext`;
  await run("openssl", [
    ...words("req -new -newkey rsa:2048 -nodes"),
    ...["-keyout", key, "-out", csr, "-subj", `/CN=${cn}`],
  ]);
  await Deno.writeTextFile(extFile, ext);
  const serial = "0x" +
    Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0"))
      .join("");
  await run("openssl", [
    ...words("x509 -req -days 3650"),
    ...["-in", csr, "-CA", caCert, "-CAkey", caKey, "-set_serial", serial],
    ...["-out", cert, "-extfile", extFile],
  ], { cwd: dir });
  await Deno.remove(csr);
  await Deno.remove(extFile);
}

/** A CA and the one leaf certificate it signs (PEM paths; OpenSSL extension lines). */
interface Chain {
  caWhat: string;
  ca: string;
  caKey: string;
  caName: string;
  leafWhat: string;
  cert: string;
  key: string;
  cn: string;
  ext: string;
}

/** Creates the CA of `c` when it is missing (and then a new leaf), and the leaf when missing. */
async function ensureChain(dir: string, log: (s: string) => void, c: Chain): Promise<void> {
  if (!exists(c.ca) || !exists(c.caKey)) {
    log(`creating ${c.caWhat}`);
    await selfSignedCa(c.caKey, c.ca, c.caName);
    await Deno.remove(c.cert).catch(() => {});
  }
  if (!exists(c.cert) || !exists(c.key)) {
    log(`creating ${c.leafWhat}`);
    await leaf(dir, c.key, c.cert, c.cn, c.ext, c.ca, c.caKey);
  }
}

/**
 * Creates whatever PKI file is missing: a test CA and a leaf server certificate it signs (SANs
 * localhost, 127.0.0.1, ::1; rustls refuses a CA used as a server certificate), a separate client
 * CA with a client certificate, and a self-signed token-signing certificate.
 */
export async function ensurePki(state: string, log: (s: string) => void): Promise<Pki> {
  const p = pkiPaths(state);
  await Deno.mkdir(p.dir, { recursive: true, mode: 0o700 });
  await ensureChain(p.dir, log, {
    caWhat: "test CA",
    ca: p.ca,
    caKey: p.caKey,
    caName: "kaniko-deno testbed CA",
    leafWhat: "server certificate",
    cert: p.serverCert,
    key: p.serverKey,
    cn: "localhost",
    ext:
      "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n" +
      "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\n",
  });
  await ensureChain(p.dir, log, {
    caWhat: "client CA",
    ca: p.clientCa,
    caKey: p.clientCaKey,
    caName: "kaniko-deno testbed client CA",
    leafWhat: "client certificate",
    cert: p.clientCert,
    key: p.clientKey,
    cn: "testbed-client",
    ext:
      "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
  });
  if (!exists(p.tokenCert) || !exists(p.tokenKey)) {
    log("creating token-signing certificate");
    await run("openssl", [
      ...words("req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=testbed-token-signer"),
      ...["-keyout", p.tokenKey, "-out", p.tokenCert],
    ]);
  }
  await Deno.mkdir(p.certDir, { recursive: true });
  const caText = await Deno.readTextFile(p.ca);
  const certDirCa = join(p.certDir, "ca.crt");
  if (!exists(certDirCa) || (await Deno.readTextFile(certDirCa)) !== caText) {
    await Deno.writeTextFile(certDirCa, caText);
  }
  return p;
}

/** Creates `<state>/auth/htpasswd` (testuser/testpass, bcrypt) if missing; returns its path. */
export async function ensureHtpasswd(state: string): Promise<string> {
  const dir = join(state, "auth");
  const path = join(dir, "htpasswd");
  if (!exists(path)) {
    await Deno.mkdir(dir, { recursive: true });
    const r = await run("htpasswd", ["-Bbn", USER, PASS]);
    await Deno.writeTextFile(path, r.stdout.trim() + "\n");
  }
  return path;
}

/** The Basic realm used by the htpasswd registry (re-exported for configs). */
export const HTPASSWD_REALM = BASIC_REALM;

/**
 * Writes `<state>/docker/config.json` with `auths` (base64 `user:pass`) for the given hosts, as
 * `docker login` would; returns the directory (for `DOCKER_CONFIG`).
 */
export async function writeDockerConfig(state: string, hosts: string[]): Promise<string> {
  const dir = join(state, "docker");
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const auth = btoa(`${USER}:${PASS}`);
  const auths: Record<string, { auth: string }> = {};
  for (const h of hosts) auths[h] = { auth };
  const path = join(dir, "config.json");
  const tmp = `${path}.tmp`;
  await Deno.writeTextFile(tmp, JSON.stringify({ auths }, null, 2) + "\n", { mode: 0o600 });
  await Deno.rename(tmp, path);
  return dir;
}
