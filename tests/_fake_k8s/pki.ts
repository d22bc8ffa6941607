/**
 * Certificates for the fake API server, made with `openssl` as `scripts/testbed/setup.ts` makes
 * the test bed's: a CA, a server certificate for 127.0.0.1 / localhost, and client certificates
 * whose CN is the user name and O the groups (what kube-apiserver's x509 authenticator reads).
 * @module
 */
import { join } from "node:path";

async function openssl(args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** PEM files of a fake cluster's PKI. */
export interface Pki {
  dir: string;
  ca: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
}

/** Creates a CA and a server certificate in `dir`. */
export async function makePki(dir: string): Promise<Pki> {
  const p: Pki = {
    dir,
    ca: join(dir, "ca.crt"),
    caKey: join(dir, "ca.key"),
    serverCert: join(dir, "server.crt"),
    serverKey: join(dir, "server.key"),
  };
  await openssl([
    ..."req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=fake-k8s-ca".split(" "),
    ...["-keyout", p.caKey, "-out", p.ca],
    ...[
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ],
  ], dir);
  await signLeaf(p, "server", "/CN=kube-apiserver", [
    "basicConstraints=critical,CA:FALSE",
    "keyUsage=critical,digitalSignature,keyEncipherment",
    "extendedKeyUsage=serverAuth",
    "subjectAltName=DNS:localhost,DNS:kubernetes.default.svc,IP:127.0.0.1",
  ]);
  return p;
}

async function signLeaf(
  p: Pki,
  base: string,
  subj: string,
  ext: string[],
): Promise<{ cert: string; key: string }> {
  const key = join(p.dir, `${base}.key`);
  const cert = join(p.dir, `${base}.crt`);
  const csr = join(p.dir, `${base}.csr`);
  const extFile = join(p.dir, `${base}.ext`);
  await openssl([
    "req",
    "-new",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    key,
    "-out",
    csr,
    "-subj",
    subj,
  ], p.dir);
  await Deno.writeTextFile(extFile, ext.join("\n") + "\n");
  const serial = "0x" + crypto.randomUUID().replaceAll("-", "").slice(0, 16);
  await openssl([
    ..."x509 -req -days 2".split(" "),
    ...[
      "-in",
      csr,
      "-CA",
      p.ca,
      "-CAkey",
      p.caKey,
      "-set_serial",
      serial,
      "-out",
      cert,
      "-extfile",
      extFile,
    ],
  ], p.dir);
  return { cert, key };
}

/** A client certificate for `user` in `groups`, signed by the cluster CA (paths). */
export function clientCertificate(p: Pki, user: string, groups: string[] = []) {
  const safe = (s: string) => s.replace(/[\/\\=+,]/g, "_");
  const subj = `/CN=${safe(user)}` + groups.map((g) => `/O=${safe(g)}`).join("");
  return signLeaf(p, `client-${safe(user).replaceAll(":", "_")}`, subj, [
    "basicConstraints=critical,CA:FALSE",
    "keyUsage=critical,digitalSignature",
    "extendedKeyUsage=clientAuth",
  ]);
}
