/**
 * The API client's TLS: the cluster CA, client certificates (mTLS against a node:https server
 * that requires them), insecure-skip-tls-verify, and the refusal of an unknown CA. Certificates
 * come from the test bed's PKI.
 */
import assert from "node:assert/strict";
import https from "node:https";
import type { TLSSocket } from "node:tls";
import { z } from "zod";
import { KubeClient } from "../../../drivers/k8s/client.ts";
import type { TlsSettings } from "../../../drivers/k8s/config.ts";
import { KanikoError } from "../../../lib/errors.ts";
import { pkiPaths } from "../../../scripts/testbed/setup.ts";
import { testbed } from "../../_testbed.ts";

const Answer = z.object({ cn: z.string(), auth: z.string() });

async function mtlsServer() {
  const env = await testbed();
  const pki = pkiPaths(env.stateDir);
  const read = (p: string) => Deno.readTextFileSync(p);
  const server = https.createServer({
    cert: read(pki.serverCert),
    key: read(pki.serverKey),
    ca: read(pki.clientCa),
    requestCert: true,
    rejectUnauthorized: false,
  }, (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate();
    const cn = peer && (req.socket as TLSSocket).authorized ? String(peer.subject?.CN) : "";
    res.writeHead(cn ? 200 : 401, { "content-type": "application/json" });
    res.end(JSON.stringify(
      cn ? { cn, auth: req.headers.authorization ?? "" } : { kind: "Status", code: 401 },
    ));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `https://127.0.0.1:${port}`,
    pki,
    read,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function client(url: string, tls: TlsSettings) {
  return new KubeClient({
    server: url,
    source: "kubeconfig test",
    namespace: "ns",
    tls,
    auth: { kind: "token", token: "tkn" },
  });
}

const OP = { verb: "get", resource: "pods", namespace: "ns" };

Deno.test("client TLS: cluster CA and client certificate; insecure; unknown CA refused", async () => {
  const s = await mtlsServer();
  try {
    const ca = s.read(s.pki.ca);
    const cert = s.read(s.pki.clientCert);
    const key = s.read(s.pki.clientKey);
    const mtls = client(s.url, { insecure: false, caCerts: [ca], cert, key });
    const answer = await mtls.json("/api/v1/x", OP, Answer);
    assert.ok(answer.cn.length > 0);
    assert.equal(answer.auth, "Bearer tkn");
    mtls.close();
    // the client certificate is what authenticates: without it the server says 401
    const noCert = client(s.url, { insecure: false, caCerts: [ca] });
    await assert.rejects(
      noCert.json("/api/v1/x", OP, Answer),
      /get pods in namespace ns: .*\(401\)/,
    );
    noCert.close();
    // insecure-skip-tls-verify: no CA needed, client certificate still sent
    const insecure = client(s.url, { insecure: true, cert, key });
    assert.equal((await insecure.json("/api/v1/x", OP, Answer)).auth, "Bearer tkn");
    // an unknown CA: one line naming the server and what to check
    const untrusted = client(s.url, { insecure: false });
    await assert.rejects(untrusted.json("/api/v1/x", OP, Answer), (e: unknown) => {
      assert.ok(e instanceof KanikoError);
      assert.match(
        e.message,
        /^Kubernetes API https:\/\/127.0.0.1:\d+: get pods in namespace ns: cannot connect/,
      );
      assert.match(e.hint ?? "", /kubeconfig test/);
      assert.ok(!e.message.includes("tkn"));
      return true;
    });
  } finally {
    await s.close();
  }
});
