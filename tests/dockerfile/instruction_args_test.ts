/**
 * Per-instruction argument rules (`validateInstruction`): what BuildKit accepts passes, what it
 * rejects fails with one line `Dockerfile:LINE: KEYWORD: what`.
 */
import assert from "node:assert/strict";
import { validateDockerfile, validateInstruction } from "../../lib/dockerfile/instruction_args.ts";
import { DockerfileError, parseDockerfile } from "../../lib/dockerfile/parser.ts";
import { parseCsvRecord, parseRunMount } from "../../lib/dockerfile/run_flags.ts";
import { parseGoDuration } from "../../lib/dockerfile/value_rules.ts";

/** [the instruction (line 2, after FROM), null when valid or the error it must give]. */
const CASES: [string, RegExp | null][] = [
  // ENV, LABEL, ARG
  ["ENV a=b c=d", null],
  ["ENV a b", null],
  ["ENV =b", /^Dockerfile:2: ENV: names can not be blank$/],
  ["ENV", /ENV: requires at least one argument/],
  ['ENV a="b', /ENV: unexpected end of statement while looking for matching double-quote/],
  ["ENV --x a=b", /ENV: unknown flag: --x \(this instruction takes no flags\)/],
  ["LABEL a=b", null],
  ["LABEL =b", /LABEL: names can not be blank/],
  ["LABEL a='b", /LABEL: .*single-quote/],
  ["ARG A B=1", null],
  ["ARG", /ARG: requires at least one argument/],
  ["ARG =x", /ARG: names can not be blank/],
  // FROM
  ["FROM alpine", null],
  ["FROM alpine AS build-1.x_y", null],
  ["FROM alpine as Build", null],
  ["FROM --platform=linux/arm64 alpine", null],
  ["FROM alpine AS 1st", /FROM: invalid name for build stage: "1st"/],
  ["FROM alpine AS a/b", /invalid name for build stage/],
  ["FROM alpine build", /FROM: requires either one or three arguments/],
  ["FROM", /FROM: requires either one or three arguments/],
  ["FROM --plat=x alpine", /FROM: unknown flag: --plat \(accepted: --platform\)/],
  ["FROM --platform alpine", /missing a value on flag: --platform/],
  // ONBUILD
  ["ONBUILD RUN x", null],
  ["ONBUILD", /ONBUILD: requires at least one argument/],
  ["ONBUILD ONBUILD RUN x", /ONBUILD: chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed/],
  ["ONBUILD FROM alpine", /ONBUILD: FROM isn't allowed as an ONBUILD trigger/],
  ["ONBUILD MAINTAINER me", /ONBUILD: MAINTAINER isn't allowed as an ONBUILD trigger/],
  ["onbuild from x", /FROM isn't allowed/],
  // MAINTAINER, USER, WORKDIR, STOPSIGNAL
  ["MAINTAINER me <me@x>", null],
  ["MAINTAINER", /MAINTAINER: requires exactly one argument/],
  ["USER 1000:1000", null],
  ["USER", /USER: requires exactly one argument/],
  ["WORKDIR /app", null],
  ["WORKDIR", /WORKDIR: requires exactly one argument/],
  ["STOPSIGNAL SIGTERM", null],
  ["STOPSIGNAL term", null],
  ["STOPSIGNAL 9", null],
  ["STOPSIGNAL SIGRTMIN+3", null],
  ["STOPSIGNAL $SIG", null],
  ["STOPSIGNAL SIGFOO", /STOPSIGNAL: invalid signal "SIGFOO"/],
  ["STOPSIGNAL 0", /STOPSIGNAL: signal 0 is not valid/],
  ["STOPSIGNAL", /STOPSIGNAL: requires exactly one argument/],
  // EXPOSE
  ["EXPOSE 80 443/tcp 53/udp 9000-9010 132/sctp", null],
  ["EXPOSE 80/TCP", null],
  ["EXPOSE $PORT", null],
  ["EXPOSE", /EXPOSE: requires at least one argument/],
  ["EXPOSE 80/http", /EXPOSE: invalid protocol "http"/],
  ["EXPOSE 70000", /EXPOSE: invalid port "70000"/],
  ["EXPOSE abc", /EXPOSE: invalid port "abc"/],
  ["EXPOSE 90-80", /EXPOSE: invalid port range "90-80"/],
  // HEALTHCHECK
  ["HEALTHCHECK NONE", null],
  ["HEALTHCHECK --interval=5s NONE", null],
  [
    "HEALTHCHECK --interval=30s --timeout=3s --start-period=1m --start-interval=2s --retries=3 CMD curl -f http://x/",
    null,
  ],
  ['HEALTHCHECK CMD ["curl", "-f"]', null],
  ["HEALTHCHECK --interval=0s --retries=0 CMD x", null],
  ["HEALTHCHECK", /HEALTHCHECK: requires at least one argument/],
  ["HEALTHCHECK NONE x", /HEALTHCHECK: HEALTHCHECK NONE takes no arguments/],
  ["HEALTHCHECK CMD", /HEALTHCHECK: missing command after HEALTHCHECK CMD/],
  ["HEALTHCHECK CMD []", /missing command after HEALTHCHECK CMD/],
  ["HEALTHCHECK CONNECT TCP 7000", /HEALTHCHECK: unknown type "CONNECT"/],
  ["HEALTHCHECK --interval=5 CMD x", /--interval: invalid duration "5"/],
  ["HEALTHCHECK --timeout=1us CMD x", /--timeout cannot be less than 1ms/],
  ["HEALTHCHECK --retries=-1 CMD x", /--retries cannot be negative \(-1\)/],
  ["HEALTHCHECK --retries=x CMD x", /--retries: invalid number "x"/],
  ["HEALTHCHECK --foo=1 CMD x", /HEALTHCHECK: unknown flag: --foo/],
  ["HEALTHCHECK --interval=1s --interval=2s CMD x", /duplicate flag specified: --interval/],
  // SHELL, VOLUME, CMD, ENTRYPOINT
  ['SHELL ["/bin/bash", "-c"]', null],
  ["SHELL /bin/bash -c", /SHELL: requires the arguments to be in JSON form/],
  ["SHELL []", /SHELL: requires at least one argument/],
  ["VOLUME /data", null],
  ['VOLUME [""]', /VOLUME: VOLUME specified can not be an empty string/],
  ["VOLUME", /VOLUME: requires at least one argument/],
  ["CMD", null],
  ["ENTRYPOINT []", null],
  ["CMD --x a", /CMD: unknown flag: --x/],
  // COPY, ADD
  ["COPY a b", null],
  [
    "COPY --from=build --chown=1:1 --chmod=0755 --link --parents --exclude=*.md --exclude=x a b",
    null,
  ],
  ["COPY --chmod=u+x,go=rX a b", null],
  ["COPY --chmod=$MODE a b", null],
  ["COPY --link=false a b", null],
  ["COPY a", /COPY: requires at least two arguments, but only one was provided/],
  ["COPY a <<EOF\nx\nEOF", /COPY: cannot accept a heredoc as a destination/],
  ["COPY --chmod=999 a b", /COPY: --chmod: invalid mode "999"/],
  ["COPY --chmod=10000 a b", /COPY: --chmod: invalid mode "10000": at most 7777/],
  ["COPY --chmod=rwx a b", /--chmod: invalid mode "rwx"/],
  ["COPY --link=maybe a b", /COPY: expecting boolean value for flag --link, not: maybe/],
  ["COPY --link= a b", /missing a value on flag: --link/],
  ["COPY --from a b", /COPY: missing a value on flag: --from/],
  ["COPY --from=a --from=b x y", /duplicate flag specified: --from/],
  ["COPY --checksum=sha256:0 a b", /COPY: unknown flag: --checksum/],
  ["COPY --keep-git-dir a b", /COPY: unknown flag: --keep-git-dir/],
  [
    "ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://x/y /",
    null,
  ],
  [
    "ADD --keep-git-dir=true --link --chown=a:b --chmod=644 --exclude=a https://github.com/a/b.git /src",
    null,
  ],
  ["ADD --checksum=md5:abc https://x/y /", /ADD: --checksum: invalid checksum "md5:abc"/],
  ["ADD --checksum=sha256:XYZ https://x/y /", /invalid checksum/],
  ["ADD --from=x a b", /ADD: unknown flag: --from/],
  ["ADD --parents a b", /ADD: unknown flag: --parents/],
  ["ADD a", /ADD: requires at least two arguments/],
  // RUN
  ["RUN --network=none --security=insecure echo", null],
  ["RUN --network=host echo", null],
  ["RUN --mount=type=bind,source=.,target=/src,rw echo", null],
  [
    "RUN --mount=type=cache,target=/root/.cache,id=pip,sharing=locked,mode=0700,uid=1000,gid=1000 x",
    null,
  ],
  ["RUN --mount=type=tmpfs,target=/tmp,size=64m x", null],
  ["RUN --mount=type=secret,id=aws,target=/root/.aws/credentials,required x", null],
  ["RUN --mount=type=secret,id=token,env=TOKEN x", null],
  ["RUN --mount=type=ssh,required=true x", null],
  ["RUN --mount=target=/x,from=build,source=/out x", null],
  ['RUN --mount="type=bind,target=/a,source=x" y', null],
  ["RUN --mount=type=cache,target=$DIR x", null],
  ["RUN --network=bridge echo", /RUN: invalid network mode "bridge"/],
  ["RUN --security=privileged echo", /RUN: security "privileged" is not valid/],
  ["RUN --mount=type=nfs,target=/x y", /RUN: unsupported mount type "nfs"/],
  ["RUN --mount=type=cache,target=/x,sharing=global y", /unsupported sharing value "global"/],
  ["RUN --mount=type=bind,target=/x,sharing=locked y", /invalid cache sharing set for bind mount/],
  ["RUN --mount=type=bind,target=/x,mode=0700 y", /mode not allowed for "bind" type mounts/],
  ["RUN --mount=type=cache,target=/x,uid=abc y", /invalid value abc for uid/],
  ["RUN --mount=type=cache,target=/x,mode=999 y", /invalid value 999 for mode/],
  ["RUN --mount=type=bind,required y", /unexpected key 'required' for mount type 'bind'/],
  ["RUN --mount=type=secret y", /invalid secret mount: one of source, target, id or env required/],
  ["RUN --mount=type=secret,id=a,source=b y", /both source and id can't be set/],
  ["RUN --mount=type=secret,id=a,from=b y", /secret mount should not have a from/],
  ["RUN --mount=type=bind,from=$STAGE,target=/x y", /'from' doesn't support variable expansion/],
  ["RUN --mount=type=bind,target=/x,foo=bar y", /unexpected key 'foo' in 'foo=bar'/],
  ["RUN --mount=type=bind,target y", /invalid field 'target': must be a key=value pair/],
  ["RUN --mount=type=cache,target=/x,ro=maybe y", /invalid value for ro: maybe/],
  ["RUN --mount=type=tmpfs,target=/x,size=1g,env=X y", /env not allowed for "tmpfs" type mounts/],
  ['RUN --mount=type=bind,target=/x\\"y z', /bare " in non-quoted-field/],
  ["RUN --mount y", /RUN: missing a value on flag: --mount/],
  ["RUN --device=/dev/fuse y", /RUN: unknown flag: --device/],
  // Unknown instructions
  ["FOO bar", /^Dockerfile:2: unknown instruction: FOO \(did you mean FROM\?\)$/],
  ["FRUMPY bar", /^Dockerfile:2: unknown instruction: FRUMPY$/],
  ["RUNN x", /unknown instruction: RUNN \(did you mean RUN\?\)/],
  ["COPPY a b", /unknown instruction: COPPY \(did you mean COPY\?\)/],
];

for (const [line, error] of CASES) {
  Deno.test(`validateInstruction: ${line}${error ? " fails" : ""}`, () => {
    const df = parseDockerfile(`FROM scratch\n${line}\n`);
    const ins = df.instructions[1];
    if (!error) {
      validateInstruction(ins, { escape: df.escape });
      return;
    }
    let caught: unknown;
    try {
      validateInstruction(ins, { escape: df.escape });
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof DockerfileError, `expected an error for ${line}`);
    assert.ok(!caught.message.includes("\n"));
    assert.equal(caught.line, 2);
    assert.match(caught.message, error);
  });
}

Deno.test("validateInstruction: RUN returns the parsed mounts", () => {
  const df = parseDockerfile(
    "RUN --mount=type=cache,target=/c,id=x --mount=type=secret,id=s,required --mount=target=/b x\n",
  );
  const { mounts, flags } = validateInstruction(df.instructions[0]);
  assert.deepEqual(mounts, [
    { type: "cache", target: "/c", id: "x", readOnly: false },
    { type: "secret", id: "s", required: true, readOnly: true },
    { type: "bind", target: "/b", readOnly: true },
  ]);
  assert.equal((flags.mount as string[]).length, 3);
});

Deno.test("validateDockerfile: the file name and the first broken rule", () => {
  const df = parseDockerfile("FROM a\nRUN ok\nEXPOSE 99999\nEXPOSE nope\n");
  assert.throws(
    () => validateDockerfile(df, { file: "build/Dockerfile.dev" }),
    (err: unknown) =>
      err instanceof DockerfileError &&
      err.message === 'build/Dockerfile.dev:3: EXPOSE: invalid port "99999"',
  );
});

Deno.test("parseRunMount: expansion of values with variables", () => {
  const vars: Record<string, string> = { DIR: "/cache", T: "cache" };
  const expand = (w: string) => w.replace(/\$(\w+)/g, (_, k) => vars[k] ?? "");
  assert.deepEqual(parseRunMount("type=$T,target=$DIR", expand), {
    type: "cache",
    target: "/cache",
    readOnly: false,
  });
  assert.throws(() => parseRunMount("type=$T,target=/x,sharing=$T", expand), /unsupported sharing/);
});

Deno.test("parseCsvRecord: Go's encoding/csv rules", () => {
  assert.deepEqual(parseCsvRecord("a,b,,c"), ["a", "b", "", "c"]);
  assert.deepEqual(parseCsvRecord('"a,b",c'), ["a,b", "c"]);
  assert.deepEqual(parseCsvRecord('"a""b"'), ['a"b']);
  assert.throws(() => parseCsvRecord('"a'), /extraneous or missing "/);
  assert.throws(() => parseCsvRecord('"a"b'), /extraneous or missing "/);
});

Deno.test("parseGoDuration: Go's time.ParseDuration", () => {
  const cases: [string, number | null][] = [
    ["0", 0],
    ["1s", 1e9],
    ["1.5h", 5400e9],
    ["1h30m", 5400e9],
    [".5s", 0.5e9],
    ["300ms", 0.3e9],
    ["1us", 1e3],
    ["1µs", 1e3],
    ["-2s", -2e9],
    ["", null],
    ["5", null],
    ["1d", null],
    [".s", null],
    ["1s2", null],
  ];
  for (const [text, ns] of cases) assert.equal(parseGoDuration(text), ns, text);
});
