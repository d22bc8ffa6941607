/**
 * The same COPY/ADD lines built by buildah 1.28 (`FROM scratch`, `--isolation chroot`, vfs
 * storage in a temporary directory) and by {@link copyStep}: the resulting trees must be equal
 * (types, modes, owners, contents, link targets; times aside). Only cases where BuildKit and
 * buildah agree are here; the known differences are listed in `copy_test.ts` / `add_test.ts`
 * (a wildcard matching nothing, `ADD --chown` of an archive). Skipped without buildah or root.
 */
import assert from "node:assert/strict";
import { copyStep } from "../../lib/build/copy.ts";
import { bed, listTree } from "./copy_helpers.ts";

const LINES = [
  "COPY etc /etc/",
  "COPY a.txt /f",
  "COPY a.txt b.txt /d/",
  "COPY dir /x/y/",
  "COPY link /l",
  "COPY --chown=1000:1001 *.txt /w/",
  "COPY dir7 /q",
  "COPY --chown=1000:1000 a.txt /i/j/k/",
  "COPY --chown=app:staff dir /named/",
  "COPY linkdir /ld",
  "COPY dir /realdir/",
  "COPY dir7 /realdir/",
  "COPY a.* /s",
  "COPY a.txt b.txt /m",
  "COPY --chmod=600 dir /cm",
  "COPY --chmod=0755 a.txt /cm2/",
  "ADD arch.tgz /ar/",
  "ADD arch.tar.xz /ax",
  "ADD notar.gz /ng/",
  "COPY hl /hl/",
  "COPY --chown=5:5 one /t",
  "COPY two /t",
  "COPY --chmod=640 two/sub/b /t/",
];

function have(cmd: string): boolean {
  try {
    return new Deno.Command(cmd, { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

async function sh(cmd: string, cwd?: string): Promise<string> {
  const out = await new Deno.Command("sh", {
    args: ["-c", cmd],
    cwd,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) throw new Error(`${cmd}: ${new TextDecoder().decode(out.stderr)}`);
  return text;
}

const ignore = !have("buildah") || Deno.uid() !== 0;

Deno.test({ name: "COPY/ADD trees equal buildah's", ignore }, async () => {
  await using b = await bed({
    "etc/passwd": "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
    "etc/group": "root:x:0:\napp:x:1001:\nstaff:x:50:\n",
    "a.txt": "A",
    "b.txt": { content: "B", mode: 0o755 },
    "dir/x": "X",
    "dir/sub": { dir: true, mode: 0o750 },
    "dir/sub/y": { content: "Y", mode: 0o600 },
    "dir/sub/up": { symlink: "../x" },
    "dir/abs": { symlink: "/etc/passwd" },
    "dir7": { dir: true, mode: 0o700 },
    "dir7/s": { dir: true, mode: 0o711 },
    "dir7/s/z": { content: "Z", mode: 0o400 },
    "link": { symlink: "a.txt" },
    "linkdir": { symlink: "dir" },
    "one/sub": { dir: true, mode: 0o700 },
    "one/sub/a": "1",
    "two/sub": { dir: true, mode: 0o751 },
    "two/sub/b": "2",
    "hl/one": "1",
    "hl/two": { hardlink: "hl/one" },
  });
  await sh(
    "tar --owner=1234 --group=5678 -czf arch.tgz dir && tar -cJf arch.tar.xz dir7",
    b.ctxDir,
  );
  await sh("echo plain | gzip > notar.gz", b.ctxDir);
  Deno.writeTextFileSync(`${b.ctxDir}/Dockerfile`, ["FROM scratch", ...LINES, ""].join("\n"));
  Deno.writeTextFileSync(`${b.ctxDir}/.dockerignore`, "Dockerfile\n");

  const storage = `${b.base}/storage`;
  const bh = `buildah --storage-driver vfs --root ${storage}/root --runroot ${storage}/run`;
  let theirs: Record<string, string>;
  await sh(`${bh} bud --isolation chroot -q -t copytest ${b.ctxDir}`);
  const container = await sh(`${bh} from copytest`);
  try {
    const mount = await sh(`${bh} mount ${container}`);
    theirs = listTree(mount);
  } finally {
    await sh(`${bh} umount ${container}; ${bh} rm ${container}`).catch(() => {});
    await sh(`${bh} rmi -a -f`).catch(() => {});
  }

  const context = await b.context();
  for (const line of LINES) {
    const words = line.split(" ");
    const kind = words.shift() as "COPY" | "ADD";
    const flags: Record<string, string> = {};
    while (words[0].startsWith("--")) {
      const [k, v] = words.shift()!.slice(2).split("=");
      flags[k] = v;
    }
    const dest = words.pop()!;
    await copyStep({
      root: b.root,
      kind,
      sources: [{ from: "context", context }],
      patterns: words,
      dest,
      workdir: "/",
      chown: flags.chown,
      chmod: flags.chmod,
    });
  }
  assert.ok(Object.keys(theirs).length > 40, "buildah built the tree");
  const ours = listTree(b.root);
  assert.deepEqual(ours, theirs);
  const inode = (p: string) => Deno.lstatSync(`${b.root}/${p}`).ino;
  assert.equal(inode("hl/one"), inode("hl/two"));
});
