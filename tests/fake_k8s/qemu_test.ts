/**
 * The test harness's qemu-user-static registration: an arm64 busybox (the test bed's .deb) runs
 * `uname -m` inside a chroot through the registered handler and prints aarch64; the handler is
 * gone afterwards. Skips (with the reason) when not root or without binfmt_misc or apt.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { registerQemu } from "../_fake_k8s/qemu.ts";
import { testbed } from "../_testbed.ts";

Deno.test("qemu harness: arm64 busybox runs uname -m in a chroot via binfmt_misc, then unregisters", async (t) => {
  const q = await registerQemu("linux/arm64");
  if ("skip" in q) {
    console.log(`skipped: ${q.skip}`);
    return;
  }
  const root = await Deno.makeTempDir({ prefix: "qemu-chroot-" });
  try {
    const env = await testbed();
    const debs = join(env.stateDir, "debs");
    const deb = [...Deno.readDirSync(debs)].find((e) =>
      /^busybox-static_.*_arm64\.deb$/.test(e.name)
    );
    assert.ok(deb, "the test bed's arm64 busybox .deb");
    const x = await new Deno.Command("dpkg-deb", { args: ["-x", join(debs, deb.name), root] })
      .output();
    assert.ok(x.success);
    const file = await new Deno.Command("file", {
      args: ["-b", join(root, "bin/busybox")],
      stdout: "piped",
    })
      .output().catch(() => undefined);
    if (file?.success) assert.match(new TextDecoder().decode(file.stdout), /aarch64|ARM aarch64/);
    const status = await Deno.readTextFile(`/proc/sys/fs/binfmt_misc/${q.name}`);
    assert.match(status, /^enabled$/m);
    assert.match(status, /^flags: .*F/m);
    await t.step("uname -m in the chroot", async () => {
      const out = await new Deno.Command("chroot", {
        args: [root, "/bin/busybox", "uname", "-m"],
        stdout: "piped",
      })
        .output();
      assert.equal(out.code, 0);
      assert.equal(new TextDecoder().decode(out.stdout).trim(), "aarch64");
    });
  } finally {
    await q.unregister();
    await Deno.remove(root, { recursive: true });
  }
  assert.throws(() => Deno.statSync(`/proc/sys/fs/binfmt_misc/${q.name}`), "unregistered");
});
