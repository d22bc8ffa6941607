/**
 * Child process of the Ctrl-C test: with the CLI's own process handlers installed (as `cli.ts`
 * has them), runs two Jobs against the stub at `Deno.args[0]` under the driver's signal
 * handling, prints how it ended and exits with the error's code.
 */
import { KubeClient } from "../../../drivers/k8s/client.ts";
import { buildSelector, jobManifest } from "../../../drivers/k8s/jobs.ts";
import { withInterrupts } from "../../../drivers/k8s/mod.ts";
import { runJobs } from "../../../drivers/k8s/run.ts";
import { KanikoError } from "../../../lib/errors.ts";
import { installProcessHandlers } from "../../../lib/cli/main.ts";

installProcessHandlers();

const client = new KubeClient({
  server: Deno.args[0],
  source: "test",
  namespace: "builds",
  tls: { insecure: false },
  auth: { kind: "none" },
});
const runs = ["amd64", "arm64"].map((arch) => ({
  platform: `linux/${arch}`,
  slug: `linux-${arch}`,
  manifest: jobManifest({
    buildId: "sig",
    namespace: "builds",
    target: {
      platform: `linux/${arch}`,
      slug: `linux-${arch}`,
      parsed: { os: "linux", architecture: arch },
    },
    image: "executor:test",
    args: [],
    deadlineSeconds: 60,
  }),
}));
try {
  await withInterrupts(new AbortController().signal, (signal) =>
    runJobs(runs, {
      client,
      buildId: "sig",
      selector: buildSelector("sig"),
      timeout: 60_000,
      signal,
    }));
  console.log("finished");
} catch (e) {
  console.log(`caught: ${(e as Error).message}`);
  client.close();
  Deno.exit(e instanceof KanikoError ? e.exitCode : 1);
}
