import assert from "node:assert/strict";
import { join } from "node:path";
import { CredentialProvider, parseExecCredential } from "../../../drivers/k8s/auth.ts";
import { loadKubeConfig } from "../../../drivers/k8s/config.ts";
import { KanikoError } from "../../../lib/errors.ts";
import { redact } from "../../../lib/log.ts";

const CA = "-----BEGIN CERTIFICATE-----\nMIIBCA==\n-----END CERTIFICATE-----\n";
const b64 = (s: string) => btoa(s);

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "k8s-config-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const noEnv = (vars: Record<string, string> = {}) => (name: string) => vars[name];

function kubeconfig(users: string, extra = "") {
  return `apiVersion: v1
kind: Config
current-context: dev
clusters:
  - name: c1
    cluster:
      server: https://10.0.0.1:6443/
      certificate-authority-data: ${b64(CA)}
  - name: c2
    cluster:
      server: https://k8s.example:443
      insecure-skip-tls-verify: true
contexts:
  - name: dev
    context: { cluster: c1, user: u1, namespace: team-a }
  - name: prod
    context: { cluster: c2, user: u2 }
users:
${users}
${extra}`;
}

Deno.test("kubeconfig: current-context, CA data, token, the context's namespace", async () => {
  await withDir(async (dir) => {
    const file = join(dir, "config");
    await Deno.writeTextFile(file, kubeconfig("  - name: u1\n    user: { token: s3cr3t-token }"));
    const c = await loadKubeConfig({ kubeconfig: file, env: noEnv(), serviceAccountDir: dir });
    assert.equal(c.server, "https://10.0.0.1:6443");
    assert.deepEqual(c.tls, { insecure: false, caCerts: [CA] });
    assert.deepEqual(c.auth, { kind: "token", token: "s3cr3t-token" });
    assert.equal(c.namespace, "team-a");
    assert.equal(c.source, `kubeconfig ${file}, context dev`);
    // --namespace wins over the context's
    const n = await loadKubeConfig({ kubeconfig: file, namespace: "x", env: noEnv() });
    assert.equal(n.namespace, "x");
  });
});

Deno.test("kubeconfig: --kube-context, client certificate data, insecure, default namespace", async () => {
  await withDir(async (dir) => {
    const file = join(dir, "config");
    await Deno.writeTextFile(
      file,
      kubeconfig(
        `  - name: u2\n    user:\n      client-certificate-data: ${b64("CERT")}\n` +
          `      client-key-data: ${b64("KEY")}`,
      ),
    );
    const c = await loadKubeConfig({
      kubeconfig: file,
      context: "prod",
      env: noEnv(),
      serviceAccountDir: dir,
    });
    assert.equal(c.server, "https://k8s.example:443");
    assert.deepEqual(c.tls, { insecure: true, cert: "CERT", key: "KEY" });
    assert.deepEqual(c.auth, { kind: "none" });
    assert.equal(c.namespace, "default");
  });
});

Deno.test("kubeconfig: $KUBECONFIG lists are merged, first name wins; relative paths", async () => {
  await withDir(async (dir) => {
    const a = join(dir, "a");
    const b = join(dir, "b");
    await Deno.writeTextFile(join(dir, "ca.pem"), CA);
    await Deno.writeTextFile(join(dir, "tok"), "file-token\n");
    await Deno.writeTextFile(
      a,
      "current-context: mine\ncontexts:\n  - name: mine\n    context: { cluster: c, user: u }\n",
    );
    await Deno.writeTextFile(
      b,
      "current-context: other\nclusters:\n  - name: c\n    cluster: { server: 'https://h:1', " +
        "certificate-authority: ca.pem }\nusers:\n  - name: u\n    user: { tokenFile: tok }\n",
    );
    const c = await loadKubeConfig({ env: noEnv({ KUBECONFIG: `${dir}/missing:${a}:${b}` }) });
    assert.equal(c.server, "https://h:1");
    assert.deepEqual(c.tls.caCerts, [CA]);
    assert.deepEqual(c.auth, { kind: "tokenFile", path: join(dir, "tok") });
    const token = await new CredentialProvider(c.auth).get();
    assert.equal(token.token, "file-token");
  });
});

Deno.test("kubeconfig: clear one-line errors", async () => {
  await withDir(async (dir) => {
    const file = join(dir, "config");
    await Deno.writeTextFile(file, kubeconfig("  - name: u1\n    user: {}"));
    await assert.rejects(
      loadKubeConfig({ kubeconfig: file, context: "nope", env: noEnv() }),
      (e: unknown) =>
        e instanceof KanikoError && /context "nope" is not defined/.test(e.message) &&
        /known contexts: dev, prod/.test(e.hint ?? ""),
    );
    await Deno.writeTextFile(file, "clusters: 3\n");
    await assert.rejects(
      loadKubeConfig({ kubeconfig: file, env: noEnv() }),
      /kubeconfig .*config: clusters: /,
    );
    await assert.rejects(
      loadKubeConfig({ kubeconfig: join(dir, "none"), env: noEnv() }),
      /--kubeconfig .*none: the file does not exist/,
    );
    await assert.rejects(
      loadKubeConfig({ env: noEnv({ HOME: dir }), serviceAccountDir: dir }),
      /no Kubernetes configuration found/,
    );
  });
});

Deno.test("in-cluster: service host and port, ServiceAccount token, CA and namespace", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "token"), "sa-token-1");
    await Deno.writeTextFile(join(dir, "ca.crt"), CA);
    await Deno.writeTextFile(join(dir, "namespace"), "builds\n");
    const env = noEnv({ KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" });
    const c = await loadKubeConfig({ env, serviceAccountDir: dir });
    assert.equal(c.server, "https://10.96.0.1:443");
    assert.equal(c.namespace, "builds");
    assert.deepEqual(c.tls, { insecure: false, caCerts: [CA] });
    const creds = new CredentialProvider(c.auth);
    assert.equal((await creds.get()).token, "sa-token-1");
    // a rotated token (new content, new mtime) is read again
    await Deno.writeTextFile(join(dir, "token"), "sa-token-2-longer");
    await Deno.utime(join(dir, "token"), new Date(), new Date(Date.now() + 5000));
    assert.equal((await creds.get()).token, "sa-token-2-longer");
    assert.equal(redact("got sa-token-2-longer"), "got ***");
    const v6 = await loadKubeConfig({
      env: noEnv({ KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "6443" }),
      serviceAccountDir: dir,
    });
    assert.equal(v6.server, "https://[fd00::1]:6443");
  });
});

Deno.test("exec plugin: args, env, KUBERNETES_EXEC_INFO, token cached until expiry", async () => {
  await withDir(async (dir) => {
    const script = join(dir, "plugin.sh");
    const count = join(dir, "count");
    // Prints an ExecCredential whose token names the run, and records what it was given.
    await Deno.writeTextFile(
      script,
      `#!/bin/sh
echo x >> "${count}"
n=$(wc -l < "${count}" | tr -d ' ')
printf '%s' "$KUBERNETES_EXEC_INFO" > "${dir}/info.json"
printf '%s %s' "$1" "$PLUGIN_ENV" > "${dir}/args"
cat <<EOF
{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",
 "status":{"token":"exec-token-$n","expirationTimestamp":"$EXPIRES"}}
EOF
`,
    );
    await Deno.chmod(script, 0o755);
    const file = join(dir, "config");
    const user = `  - name: u1
    user:
      exec:
        apiVersion: client.authentication.k8s.io/v1
        command: ./plugin.sh
        args: [--cluster-id]
        provideClusterInfo: true
        env:
          - { name: PLUGIN_ENV, value: hello }
          - { name: EXPIRES, value: "${new Date(Date.now() + 3_600_000).toISOString()}" }`;
    await Deno.writeTextFile(file, kubeconfig(user));
    const c = await loadKubeConfig({ kubeconfig: file, env: noEnv() });
    assert.equal(c.auth.kind, "exec");
    const creds = new CredentialProvider(c.auth);
    assert.equal((await creds.get()).token, "exec-token-1");
    assert.equal((await creds.get()).token, "exec-token-1"); // cached
    const info = JSON.parse(await Deno.readTextFile(join(dir, "info.json")));
    assert.equal(info.kind, "ExecCredential");
    assert.equal(info.apiVersion, "client.authentication.k8s.io/v1");
    assert.equal(info.spec.cluster.server, "https://10.0.0.1:6443/");
    assert.equal(info.spec.interactive, false);
    assert.equal(await Deno.readTextFile(join(dir, "args")), "--cluster-id hello");
    creds.invalidate(); // after a 401
    assert.equal((await creds.get()).token, "exec-token-2");
    assert.equal(redact("Bearer exec-token-2"), "Bearer ***");
  });
});

Deno.test("exec plugin output: client certificates, expiry, bad output", () => {
  const api = "client.authentication.k8s.io/v1beta1";
  const cert = parseExecCredential(
    JSON.stringify({
      apiVersion: api,
      kind: "ExecCredential",
      status: {
        clientCertificateData: "PEMCERT",
        clientKeyData: "PEMKEY",
        expirationTimestamp: "2000-01-01T00:00:00Z",
      },
    }),
    api,
    "plugin p",
  );
  assert.deepEqual(cert.creds, { cert: "PEMCERT", key: "PEMKEY" });
  assert.ok(cert.expires < Date.now()); // already expired: the next request runs it again
  assert.throws(
    () => parseExecCredential("nope", api, "plugin p"),
    /plugin p: its output is not JSON/,
  );
  assert.throws(
    () => parseExecCredential(JSON.stringify({ kind: "ExecCredential", status: {} }), api, "p"),
    /neither a token nor a client certificate/,
  );
  assert.throws(
    () =>
      parseExecCredential(
        JSON.stringify({ apiVersion: "client.authentication.k8s.io/v1", kind: "ExecCredential" }),
        api,
        "p",
      ),
    /it answered client.authentication.k8s.io\/v1, the kubeconfig asks for .*v1beta1/,
  );
});

Deno.test("exec plugin: a failing or missing command is one line with the install hint", async () => {
  const provider = new CredentialProvider({
    kind: "exec",
    exec: { command: "/nonexistent/kubectl-oidc", installHint: "install kubelogin\nmore" },
    cluster: {},
  });
  await assert.rejects(provider.get(), (e: unknown) => {
    assert.ok(e instanceof KanikoError);
    assert.match(e.message, /credential plugin \/nonexistent\/kubectl-oidc: cannot run it/);
    assert.equal(e.hint, "install kubelogin");
    return true;
  });
  const failing = new CredentialProvider({
    kind: "exec",
    exec: { command: "sh", args: ["-c", "echo 'token expired, run login' >&2; exit 4"] },
    cluster: {},
  });
  await assert.rejects(failing.get(), /credential plugin sh exited with code 4: token expired/);
});
