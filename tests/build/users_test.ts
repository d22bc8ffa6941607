/**
 * lib/build/users.ts: USER resolution with Docker/BuildKit semantics from the image's own
 * /etc/passwd and /etc/group (moby `user.GetExecUser`, BuildKit's `uid:gid` fast path), read
 * inside the root with symlinks resolved there, never the host's.
 */
import assert from "node:assert/strict";
import { KanikoError } from "../../lib/errors.ts";
import { parseGroup, parsePasswd, resolveUser } from "../../lib/build/users.ts";

const PASSWD = [
  "root:x:0:0:root:/root:/bin/sh",
  "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
  "alice:x:1000:1000:Alice:/home/alice:/bin/sh",
  "bob:x:1001:100::/home/bob:/bin/sh",
  "  ",
  "dup:x:1000:5:second entry for uid 1000:/nowhere:/bin/sh",
].join("\n");

const GROUP = [
  "root:x:0:",
  "wheel:x:10:root,alice",
  "users:x:100:",
  "alice:x:1000:",
  "docker:x:999:bob,alice",
  "audio:x:29:bob",
].join("\n");

async function imageRoot(files: Record<string, string> = { passwd: PASSWD, group: GROUP }) {
  const root = await Deno.makeTempDir({ prefix: "kaniko-users-" });
  await Deno.mkdir(`${root}/etc`);
  for (const [name, text] of Object.entries(files)) {
    await Deno.writeTextFile(`${root}/etc/${name}`, text + "\n");
  }
  return {
    root,
    async [Symbol.asyncDispose]() {
      await Deno.remove(root, { recursive: true });
    },
  };
}

Deno.test("resolveUser: a name gets its passwd gid, home and the groups listing it", async () => {
  await using img = await imageRoot();
  assert.deepEqual(resolveUser(img.root, "alice"), {
    uid: 1000,
    gid: 1000,
    groups: [10, 999],
    home: "/home/alice",
  });
  assert.deepEqual(resolveUser(img.root, "bob"), {
    uid: 1001,
    gid: 100,
    groups: [999, 29],
    home: "/home/bob",
  });
});

Deno.test("resolveUser: empty spec is root with root's groups; 'root' by name too", async () => {
  await using img = await imageRoot();
  const root = { uid: 0, gid: 0, groups: [10], home: "/root" };
  assert.deepEqual(resolveUser(img.root, ""), root);
  assert.deepEqual(resolveUser(img.root, "root"), root);
});

Deno.test("resolveUser: a numeric uid uses the first passwd entry, or none (gid 0, home /)", async () => {
  await using img = await imageRoot();
  // First match wins, even with a duplicate uid.
  assert.deepEqual(resolveUser(img.root, "1000"), {
    uid: 1000,
    gid: 1000,
    groups: [10, 999],
    home: "/home/alice",
  });
  assert.deepEqual(resolveUser(img.root, "4242"), { uid: 4242, gid: 0, groups: [], home: "/" });
});

Deno.test("resolveUser: an explicit group replaces the gid and drops supplementary groups", async () => {
  await using img = await imageRoot();
  assert.deepEqual(resolveUser(img.root, "alice:docker"), {
    uid: 1000,
    gid: 999,
    groups: [],
    home: "/home/alice",
  });
  assert.deepEqual(resolveUser(img.root, "alice:77"), {
    uid: 1000,
    gid: 77,
    groups: [],
    home: "/home/alice",
  });
  assert.deepEqual(resolveUser(img.root, "4242:audio"), {
    uid: 4242,
    gid: 29,
    groups: [],
    home: "/",
  });
});

Deno.test("resolveUser: uid:gid is taken as is (BuildKit's fast path); home from passwd", async () => {
  await using img = await imageRoot();
  assert.deepEqual(resolveUser(img.root, "1000:5"), {
    uid: 1000,
    gid: 5,
    groups: [],
    home: "/home/alice",
  });
  assert.deepEqual(resolveUser(img.root, "root:root"), {
    uid: 0,
    gid: 0,
    groups: [],
    home: "/root",
  });
  assert.deepEqual(resolveUser(img.root, "123:456"), { uid: 123, gid: 456, groups: [], home: "/" });
});

Deno.test("resolveUser: Docker's errors for unknown names", async () => {
  await using img = await imageRoot();
  assert.throws(
    () => resolveUser(img.root, "mallory"),
    (e) =>
      e instanceof KanikoError &&
      e.message === "unable to find user mallory: no matching entries in passwd file",
  );
  assert.throws(
    () => resolveUser(img.root, "alice:nogroup"),
    (e) =>
      e instanceof KanikoError &&
      e.message === "unable to find group nogroup: no matching entries in group file",
  );
  assert.throws(
    () => resolveUser(img.root, "-5"),
    (e) => e instanceof KanikoError && /must be in range/.test(e.message),
  );
});

Deno.test("resolveUser: without /etc/passwd numeric ids work and names fail", async () => {
  await using img = await imageRoot({});
  assert.deepEqual(resolveUser(img.root, ""), { uid: 0, gid: 0, groups: [], home: "/" });
  assert.deepEqual(resolveUser(img.root, "33"), { uid: 33, gid: 0, groups: [], home: "/" });
  assert.deepEqual(resolveUser(img.root, "33:44"), { uid: 33, gid: 44, groups: [], home: "/" });
  assert.throws(() => resolveUser(img.root, "root"), /unable to find user root/);
});

Deno.test("resolveUser: the image's files are read inside the root, symlinks resolved there", async () => {
  await using img = await imageRoot({});
  // An absolute symlink means the image's /data/passwd, not the host's file of that name.
  await Deno.mkdir(`${img.root}/data`);
  await Deno.writeTextFile(`${img.root}/data/passwd`, "zed:x:77:88::/z:/bin/sh\n");
  await Deno.symlink("/data/passwd", `${img.root}/etc/passwd`);
  // An escape attempt stays inside the root: ../../../../etc/group is the image's /etc/group,
  // i.e. the link itself (a loop, read as no group file), never the host's.
  await Deno.symlink("../../../../../../etc/group", `${img.root}/etc/group`);
  assert.deepEqual(resolveUser(img.root, "zed"), { uid: 77, gid: 88, groups: [], home: "/z" });
  // The host certainly has a root user; the image does not.
  assert.throws(() => resolveUser(img.root, "root"), /unable to find user root/);
});

Deno.test("parsePasswd / parseGroup: runc's field rules", () => {
  assert.deepEqual(parsePasswd("a:x:1:2:g:/h:/s\n\n b:x:bad:3\n"), [
    { name: "a", uid: 1, gid: 2, home: "/h" },
    { name: "b", uid: 0, gid: 3, home: "" },
  ]);
  assert.deepEqual(parseGroup("g:x:5:a,b,\nh:x:6\n"), [
    { name: "g", gid: 5, members: ["a", "b"] },
    { name: "h", gid: 6, members: [] },
  ]);
});
