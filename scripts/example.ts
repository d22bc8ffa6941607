/**
 * The quick start: `deno task example` builds `examples/` into an image with our CLI — no
 * registry needed — writing an OCI layout (`out/example-oci`) and a `docker load` tarball
 * (`out/example.tar`). When the test bed is running (`deno run -A scripts/testbed.ts start`), the
 * image is built on its busybox and also pushed to its plain registry. Then it says how to look.
 * @module
 */
import { join } from "node:path";
import { isRunning } from "./testbed.ts";
import { readEnv, REPO_ROOT } from "./testbed/env.ts";

const out = join(REPO_ROOT, "out");
const layout = join(out, "example-oci");
const tarball = join(out, "example.tar");

async function main(): Promise<number> {
  await Deno.mkdir(out, { recursive: true });
  await Deno.remove(layout, { recursive: true }).catch(() => {});
  const args = [
    "run",
    "-A",
    "--v8-flags=--max-semi-space-size=2",
    join(REPO_ROOT, "cli.ts"),
    // Never Kaniko's in-place model here: in a container the default is --isolation=none, which
    // builds into / of the machine running the example.
    "--isolation=chroot",
    "--context",
    join(REPO_ROOT, "examples"),
    "--oci-layout-path",
    layout,
    "--tar-path",
    tarball,
  ];
  let pushed: string | undefined;
  if (isRunning()) {
    const env = await readEnv();
    const registry = env.registries.plain.host;
    pushed = `${registry}/examples/site:latest`;
    args.push(
      "--build-arg",
      `BASE=${registry}/library/busybox:latest`,
      "--destination",
      pushed,
      "--insecure-registry",
      registry,
    );
  } else {
    args.push("--no-push");
  }
  const build = await new Deno.Command(Deno.execPath(), { args, stdin: "null" }).spawn().status;
  if (!build.success) return build.code;
  console.log(`
The image is in ${layout} (an OCI layout) and ${tarball} (for docker load).
Look at it:
  skopeo inspect oci:${layout}:latest
  umoci unpack --image ${layout}:latest /tmp/example-bundle && ls -R /tmp/example-bundle/rootfs
  docker load -i ${tarball}            # on a machine with Docker`);
  if (pushed) {
    console.log(`  skopeo inspect --tls-verify=false docker://${pushed}
  deno task kaniko manifest ${pushed}`);
  } else {
    console.log(`(Start the test bed — deno run -A scripts/testbed.ts start — to build it on busybox
and push it to a local registry too.)`);
  }
  return 0;
}

Deno.exit(await main());
