/**
 * RUN through real builds (`cli.ts --isolation chroot`), checked on the pushed image read back
 * with skopeo and umoci: shell and exec forms, SHELL, USER (uid, gid, supplementary groups from
 * the image's /etc/passwd and /etc/group), HOME, WORKDIR (created, relative, owned by USER),
 * build args seen but not persisted, background processes killed, nothing written outside the
 * root, output streamed, heredocs (BuildKit's three forms), and `RUN --mount` cache / secret (file and env sources: never in a
 * layer, the config or the log) / bind (context, stages and an image; read-only) / tmpfs.
 * One Dockerfile holds every case; each test checks one theme of the same image.
 */
import assert from "node:assert/strict";
import {
  assertBuilt,
  build,
  type BuildResult,
  bytesInclude,
  engine,
  noEngine,
  octal,
  type ReadImage,
  readImage,
  sha256,
  tempDir,
  USERS,
  writeContext,
} from "./_engine.ts";

const FILE_SECRET = `file-secret-${crypto.randomUUID()}`;
const ENV_SECRET = `env-secret-${crypto.randomUUID()}`;
const ESCAPE = `/tmp/kaniko-engine-escape-${crypto.randomUUID().slice(0, 8)}`;
const CACHE_ID = `engine-cache-${crypto.randomUUID().slice(0, 8)}`;

/** A shell that logs how it was called, then runs the command with /bin/sh. */
const MYSHELL = '#!/bin/sh\necho "myshell:$*" >> /shell.log\nexec /bin/sh -c "$2"\n';

function dockerfile(base: string, baseAmd64: string): string {
  return `FROM ${base} AS first
RUN mkdir /built && echo from-first > /built/artifact

FROM scratch AS first2
COPY data/x /x

FROM ${base}
COPY etc/passwd etc/group /etc/
COPY --chmod=755 myshell /bin/myshell
RUN ["/bin/sh", "-c", "echo \\"$0\\" > /exec-zero; echo \\"$1\\" > /exec-literal", "zero", "$HOME"]
RUN echo "$0" > /shell-zero && echo "$HOME" > /home-root
SHELL ["/bin/myshell", "-c"]
RUN echo via-myshell > /via-myshell
CMD run it
SHELL ["/bin/sh", "-c"]
RUN mkdir -p /home/alice /out && chown alice /home/alice && chmod 1777 /out
USER alice
RUN { id -u; id -g; id -G; echo "$HOME"; } > /out/alice
WORKDIR /alice-work/deep
USER alice:extra
RUN { id -u; id -g; } > /out/alice-extra
USER 1234:5678
RUN { id -u; id -g; id -G; echo "$HOME"; } > /out/numeric
USER root
WORKDIR /work/dir
WORKDIR sub
RUN pwd > /pwd
ARG BUILDONLY=default
ENV PERSIST=yes
RUN echo "$BUILDONLY $PERSIST" > /env-seen
RUN (sleep 1; touch /late-bg) >/dev/null 2>&1 &
RUN sleep 2
RUN touch ${ESCAPE} && echo visible-output-marker
RUN true
RUN --mount=type=cache,id=${CACHE_ID},target=/cache echo cached > /cache/f
RUN --mount=type=cache,id=${CACHE_ID},target=/cache cp /cache/f /from-cache
RUN --mount=type=secret,id=tok sha256sum /run/secrets/tok | cut -d" " -f1 > /tok.sum
RUN --mount=type=secret,id=etok,env=TOKVAR printf %s "$TOKVAR" | sha256sum | cut -d" " -f1 > /etok.sum
RUN --mount=type=bind,source=data,target=/mnt/data cp /mnt/data/x /bound && { touch /mnt/data/y 2>/dev/null || echo ro > /bind-ro; }
RUN --mount=type=bind,from=first2,source=/x,target=/mnt/two --mount=type=bind,from=first,source=/built,target=/mnt/stage cp /mnt/stage/artifact /from-stage-bind && cp /mnt/two /from-stage2-bind
RUN --mount=type=bind,from=${baseAmd64},source=/bin/busybox,target=/mnt/bb cmp /mnt/bb /bin/busybox && echo same > /bind-image
RUN <<EOT
echo line1 > /hd-lone
echo line2 >> /hd-lone
EOT
RUN cat <<EOT > /hd-cmd
home \${HOME}
EOT
RUN <<A cat > /hd-two && cat <<B >> /hd-two
a
A
b
B
USER alice
RUN <<'EOT'
#!/bin/sh -e
echo "script \$0 \$(id -u)" > /tmp/hd-script
EOT
USER root
RUN --mount=type=tmpfs,target=/scratchpad echo t > /scratchpad/f && test -f /scratchpad/f && echo ok > /tmpfs-ok
`;
}

interface Built {
  b: BuildResult;
  img: ReadImage;
}

let shared: Promise<Built> | undefined;

/** Builds the RUN image once for every test of this file. */
function built(): Promise<Built> {
  shared ??= (async () => {
    const e = await engine();
    await using secrets = await tempDir("kaniko-engine-secret-");
    const secretFile = `${secrets.path}/tok`;
    await Deno.writeTextFile(secretFile, FILE_SECRET);
    await using ctx = await writeContext({
      Dockerfile: dockerfile(e.base, e.baseAmd64),
      ...USERS,
      myshell: MYSHELL,
      "data/x": "bound-data\n",
    });
    const b = await build(e, ctx.path, {
      args: [
        "--build-arg",
        "BUILDONLY=fromcli",
        "--secret",
        `id=tok,src=${secretFile}`,
        "--secret",
        "id=etok,env=ENGINE_SECRET",
      ],
      env: { ENGINE_SECRET: ENV_SECRET },
    });
    assertBuilt(b);
    return { b, img: await readImage(e, `docker://${b.destination}`) };
  })();
  return shared;
}

const opts = { ignore: noEngine, sanitizeResources: false, sanitizeOps: false };

Deno.test(
  "RUN exec form runs argv as is; shell form uses /bin/sh -c; SHELL changes it",
  opts,
  async () => {
    const { img } = await built();
    assert.equal(img.text("exec-zero"), "zero\n");
    assert.equal(img.text("exec-literal"), "$HOME\n", "exec form: no variable expansion");
    assert.equal(img.text("shell-zero"), "/bin/sh\n");
    assert.equal(img.text("shell.log"), "myshell:-c echo via-myshell > /via-myshell\n");
    assert.equal(img.text("via-myshell"), "via-myshell\n");
    assert.deepEqual(img.config.config.Cmd, ["/bin/myshell", "-c", "run it"]);
    assert.deepEqual(img.config.config.Shell, ["/bin/sh", "-c"]);
  },
);

Deno.test("RUN as USER: uid, gid and supplementary groups from the image; HOME", opts, async () => {
  const { img } = await built();
  assert.equal(img.text("home-root"), "/root\n");
  assert.equal(img.text("out/alice"), "1500\n1600\n1600 1700 1800\n/home/alice\n");
  assert.equal(img.text("out/alice-extra"), "1500\n1700\n");
  assert.equal(img.text("out/numeric"), "1234\n5678\n5678\n/\n");
  const owner = (p: string) => `${img.tree.get(p)?.uid}:${img.tree.get(p)?.gid}`;
  assert.equal(owner("out/alice"), "1500:1600");
  assert.equal(owner("out/numeric"), "1234:5678");
  assert.equal(img.config.config.User, "root");
});

Deno.test(
  "WORKDIR: created (as USER), relative to the previous one, the RUN's cwd",
  opts,
  async () => {
    const { img } = await built();
    assert.equal(img.text("pwd"), "/work/dir/sub\n");
    assert.equal(img.tree.get("work/dir/sub")?.type, "dir");
    assert.equal(octal(img.tree.get("work/dir/sub")?.mode), "0o755");
    for (const p of ["alice-work", "alice-work/deep"]) {
      const t = img.tree.get(p);
      assert.equal(`${t?.type} ${t?.uid}:${t?.gid}`, "dir 1500:1600", p);
    }
    assert.equal(img.config.config.WorkingDir, "/work/dir/sub");
  },
);

Deno.test(
  "RUN heredocs: a lone <<EOT runs its body; #! bodies run as a script; others go to the shell",
  opts,
  async () => {
    const { img } = await built();
    assert.equal(img.text("hd-lone"), "line1\nline2\n");
    assert.equal(img.text("hd-cmd"), "home /root\n");
    assert.equal(img.text("hd-two"), "a\nb\n");
    assert.equal(img.text("tmp/hd-script"), "script /dev/pipes/EOT 1500\n");
    assert.equal(img.tree.get("dev"), undefined, "the script's mount point is not in the image");
  },
);

Deno.test("build args reach RUN but not the config; ENV persists", opts, async () => {
  const { img } = await built();
  assert.equal(img.text("env-seen"), "fromcli yes\n");
  const env: string[] = img.config.config.Env;
  assert.ok(env.includes("PERSIST=yes"), env.join(" "));
  assert.ok(!env.some((e) => e.startsWith("BUILDONLY=")), env.join(" "));
});

Deno.test(
  "RUN: background processes are killed at step end; nothing lands outside the root",
  opts,
  async () => {
    const { b, img } = await built();
    assert.equal(img.tree.get("late-bg"), undefined, "a background process outlived its step");
    assert.ok(img.tree.has(ESCAPE.slice(1)), "the file is in the image");
    assert.ok(!(await exists(ESCAPE)), `${ESCAPE} was written on the host`);
    assert.match(b.stderr, /^visible-output-marker$/m, "RUN output is streamed");
  },
);

Deno.test(
  "RUN --mount=type=cache persists between steps and stays out of the image",
  opts,
  async () => {
    const { img } = await built();
    assert.equal(img.text("from-cache"), "cached\n");
    assert.equal(img.tree.get("cache/f"), undefined);
  },
);

Deno.test(
  "RUN --mount=type=secret (src= and env=): readable, never in a layer, config or log",
  opts,
  async () => {
    const { b, img } = await built();
    assert.equal(img.text("tok.sum"), (await sha256(FILE_SECRET)).slice(7) + "\n");
    assert.equal(img.text("etok.sum"), (await sha256(ENV_SECRET)).slice(7) + "\n");
    assert.equal(img.tree.get("run/secrets/tok"), undefined);
    for (const secret of [FILE_SECRET, ENV_SECRET]) {
      for (const layer of img.layers) {
        assert.ok(!bytesInclude(layer.tar, secret), `secret in layer ${layer.digest}`);
      }
      assert.ok(!JSON.stringify(img.config).includes(secret), "secret in the config");
      assert.ok(!b.stderr.includes(secret) && !b.stdout.includes(secret), "secret in the log");
    }
    assert.ok(!img.config.config.Env.some((e: string) => e.startsWith("TOKVAR=")));
  },
);

Deno.test(
  "RUN --mount=type=bind (context, read-only; from stages and an image) and tmpfs",
  opts,
  async () => {
    const { img } = await built();
    assert.equal(img.text("bound"), "bound-data\n");
    assert.equal(img.text("bind-ro"), "ro\n", "a bind mount is read-only by default");
    assert.equal(img.text("from-stage-bind"), "from-first\n");
    assert.equal(img.text("from-stage2-bind"), "bound-data\n", "each from= names its own stage");
    assert.equal(img.text("bind-image"), "same\n", "from= an image");
    assert.equal(img.text("tmpfs-ok"), "ok\n");
    for (const p of ["mnt/data/x", "mnt/stage/artifact", "mnt/bb", "scratchpad/f", "built", "x"]) {
      assert.equal(img.tree.get(p), undefined, p);
    }
  },
);

Deno.test(
  "each RUN with changes adds one layer; metadata steps are empty_layer",
  opts,
  async () => {
    const { img } = await built();
    const history: Array<{ created_by: string; empty_layer?: boolean }> = img.config.history;
    const nonEmpty = history.filter((h) => !h.empty_layer).length;
    assert.equal(nonEmpty, img.manifest.layers.length);
    assert.equal(img.config.rootfs.diff_ids.length, img.manifest.layers.length);
    for (const h of history) {
      if (/^(USER|ENV|ARG|SHELL|CMD) /.test(h.created_by)) {
        assert.equal(h.empty_layer, true, h.created_by);
      }
      if (/^RUN .*(exec-zero|via-myshell|env-seen)/.test(h.created_by)) {
        assert.ok(!h.empty_layer, h.created_by);
      }
    }
  },
);

Deno.test({
  name: "a RUN that changes nothing adds no layer; RUN layers hold only what the command changed",
  // The sandbox creates /etc/hosts and /etc/resolv.conf stubs in the image's /etc and removes
  // them afterwards, restoring /etc's times (lib/build/mounts.ts MountStubs.cleanup); its ctime
  // cannot be restored, so the snapshot diff ignores directory ctimes, as BuildKit's does.
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { img } = await built();
    const history: Array<{ created_by: string; empty_layer?: boolean }> = img.config.history;
    const noop = history.find((h) => h.created_by === "RUN /bin/sh -c true");
    assert.equal(noop?.empty_layer, true, "RUN true added a layer");
    for (const layer of img.layers.slice(1)) {
      if (layer.names.includes("pwd")) assert.deepEqual(layer.names, ["pwd"]);
    }
  },
});

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}
