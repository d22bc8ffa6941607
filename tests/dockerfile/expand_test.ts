/**
 * Which instructions and flags are expanded, as BuildKit expands them (instructions/commands.go
 * `Expand` methods, dispatch in dockerfile2llb/convert.go), and the helpers behind it.
 */
import assert from "node:assert/strict";
import { parseDockerfile } from "../../lib/dockerfile/parser.ts";
import { type BuildPlan, type DescribeOptions, planBuild } from "../../lib/dockerfile/plan.ts";
import { isHeredocMarker, mountFields, parseFlag, splitCsv } from "../../lib/dockerfile/expand.ts";
import { parseWords } from "../../lib/dockerfile/words.ts";
import { DEFAULT_PATH } from "../../lib/dockerfile/stages.ts";
import { describeError, KanikoError } from "../../lib/errors.ts";

function plan(text: string, options: Partial<DescribeOptions> = {}): BuildPlan {
  return planBuild(parseDockerfile(text, { file: "Dockerfile" }), {
    buildArgs: [],
    file: "Dockerfile",
    env: {},
    platform: "linux/amd64",
    buildPlatform: "linux/amd64",
    ...options,
  });
}

// A valid digest: BuildKit parses an ADD --checksum for an HTTP source (convert_copy.go).
const DIGEST = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const PRELUDE =
  "FROM busybox\nARG U=app G=staff M=0755 D=/data P=8080 S=SIGTERM SUM=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n";

interface Case {
  name: string;
  /** Instructions after PRELUDE; the last one is checked. */
  body: string;
  expanded?: string[];
  flags?: string[];
  unchanged?: boolean;
}

const CASES: Case[] = [
  { name: "WORKDIR", body: "WORKDIR $D/${U}", expanded: ["/data/app"] },
  { name: "USER", body: "USER $U:$G", expanded: ["app:staff"] },
  { name: "STOPSIGNAL", body: "STOPSIGNAL $S", expanded: ["SIGTERM"] },
  { name: "VOLUME (shell form)", body: "VOLUME $D /v/$U", expanded: ["/data", "/v/app"] },
  { name: "VOLUME (exec form)", body: 'VOLUME ["$D", "/x"]', expanded: ["/data", "/x"] },
  { name: "EXPOSE", body: "EXPOSE $P 9090/udp", expanded: ["8080", "9090/udp"] },
  {
    name: "EXPOSE splits an expansion into words",
    body: 'ARG PORTS="80 443"\nEXPOSE $PORTS',
    expanded: ["80", "443"],
  },
  { name: "ENV keys and values", body: "ENV K_$U=$G", expanded: ["K_app", "staff"] },
  {
    name: "ENV quoting: single quotes keep $, double quotes expand",
    body: "ENV A='$U' B=\"$U x\" C=$U\\ y",
    expanded: ["A", "$U", "B", "app x", "C", "app y"],
  },
  { name: "ENV legacy form", body: "ENV NAME hello $U", expanded: ["NAME", "hello app"] },
  { name: "LABEL", body: 'LABEL "owner"="$U" v=1', expanded: ["owner", "app", "v", "1"] },
  {
    name: "COPY sources, destination, --chown, --chmod",
    body: "COPY --chown=$U:$G --chmod=$M src/$U /dst/$U/",
    expanded: ["src/app", "/dst/app/"],
    flags: ["--chown=app:staff", "--chmod=0755"],
  },
  {
    name: "COPY exec form",
    body: 'COPY ["$D/a b", "/x/"]',
    expanded: ["/data/a b", "/x/"],
  },
  {
    name: "COPY --link and --exclude stay as written",
    body: "COPY --link --exclude=$U *.txt /x/",
    expanded: ["*.txt", "/x/"],
    flags: ["--link", "--exclude=$U"],
  },
  {
    name: "ADD --chown and --checksum",
    body: "ADD --checksum=$SUM --chown=$U https://example.com/$U.tgz /opt/",
    expanded: ["https://example.com/app.tgz", "/opt/"],
    flags: [`--checksum=${DIGEST}`, "--chown=app"],
  },
  {
    name: "RUN --mount fields",
    body: "RUN --mount=type=cache,target=$D/cache,id=$U --network=none echo $U",
    expanded: ["echo $U"],
    flags: ["--mount=type=cache,target=/data/cache,id=app", "--network=none"],
  },
  { name: "RUN (shell form) is not expanded", body: "RUN echo $U", unchanged: true },
  { name: "RUN (exec form) is not expanded", body: 'RUN ["echo", "$U"]', unchanged: true },
  { name: "CMD is not expanded", body: "CMD echo $U", unchanged: true },
  { name: "ENTRYPOINT is not expanded", body: 'ENTRYPOINT ["/bin/$U"]', unchanged: true },
  { name: "SHELL is not expanded", body: 'SHELL ["/bin/$U", "-c"]', unchanged: true },
  { name: "HEALTHCHECK is not expanded", body: "HEALTHCHECK CMD curl $U", unchanged: true },
  { name: "ONBUILD is not expanded", body: "ONBUILD RUN echo $U", unchanged: true },
  { name: "MAINTAINER is not expanded", body: "MAINTAINER $U", unchanged: true },
];

for (const c of CASES) {
  Deno.test(`expansion: ${c.name}`, () => {
    const p = plan(PRELUDE + c.body + "\n");
    const insts = p.stages[0].instructions;
    const inst = insts[insts.length - 1];
    if (c.unchanged) {
      assert.deepEqual(inst.expanded, inst.args);
      assert.deepEqual(inst.expandedFlags, inst.flags);
    }
    if (c.expanded) assert.deepEqual(inst.expanded, c.expanded);
    if (c.flags) assert.deepEqual(inst.expandedFlags, c.flags);
  });
}

Deno.test("expansion: PATH is BuildKit's default in a stage FROM an image", () => {
  const p = plan("FROM busybox\nENV PATH=/app/bin:$PATH\n");
  assert.deepEqual(p.stages[0].instructions[0].expanded, ["PATH", `/app/bin:${DEFAULT_PATH}`]);
});

Deno.test("expansion: the base image's environment, when known", () => {
  const p = plan("FROM golang:1.22\nWORKDIR $GOPATH/src\n", {
    baseImageEnv: (ref) => ref === "golang:1.22" ? ["GOPATH=/go", "PATH=/go/bin"] : undefined,
  });
  assert.deepEqual(p.stages[0].instructions[0].expanded, ["/go/src"]);
  assert.equal(p.stages[0].instructions[0].scope.PATH, "/go/bin");
});

Deno.test("expansion: an unquoted COPY heredoc body is expanded, a quoted one is not", () => {
  const p = plan(
    "FROM busybox\nARG U=app\nCOPY <<EOF /a\nuser $U\nEOF\nCOPY <<'EOF' /b\nuser $U\nEOF\n",
  );
  const [, a, b] = p.stages[0].instructions;
  assert.deepEqual(a.heredocs, [{ name: "EOF", content: "user app\n" }]);
  assert.deepEqual(b.heredocs, [{ name: "EOF", content: "user $U\n" }]);
  assert.deepEqual(a.expanded, a.args, "the <<EOF marker stays");
});

Deno.test("expansion: heredoc quotes are plain characters; backslash escapes", () => {
  const p = plan("FROM busybox\nARG U=app\nCOPY <<EOF /a\necho '$U' \"$U\" \\$U\nEOF\n");
  assert.deepEqual(p.stages[0].instructions[1].heredocs, [
    { name: "EOF", content: "echo 'app' \"app\" $U\n" },
  ]);
});

Deno.test("expansion: the escape directive's backtick escapes", () => {
  const p = plan("# escape=`\nFROM busybox\nARG U=app\nENV A=`$U B=$U\nWORKDIR C:\\$U\n");
  const insts = p.stages[0].instructions;
  assert.deepEqual(insts[1].expanded, ["A", "$U", "B", "app"]);
  assert.deepEqual(insts[2].expanded, ["C:\\app"]);
});

Deno.test("expansion: ${v:?msg} failing in WORKDIR is one line naming Dockerfile:LINE", () => {
  try {
    plan("FROM busybox\n\nWORKDIR ${DIR:?set DIR}\n");
    assert.fail("expected an error");
  } catch (e) {
    assert.ok(e instanceof KanikoError);
    assert.match(describeError(e), /^Dockerfile:3: WORKDIR \$\{DIR:\?set DIR\}: .*DIR: set DIR$/);
  }
});

Deno.test("expansion: scope holds the variables in force before each step", () => {
  const p = plan("FROM busybox\nARG A=1\nENV B=2\nRUN true\n");
  const [arg, env, run] = p.stages[0].instructions;
  assert.equal(arg.scope.A, undefined);
  assert.equal(env.scope.A, "1");
  assert.deepEqual([run.scope.A, run.scope.B], ["1", "2"]);
});

Deno.test("parseWords: BuildKit's parseWords (quotes and escapes kept, not split on)", () => {
  const words = (s: string, esc = "\\") => parseWords(s, esc);
  assert.deepEqual(words('a="b c" d=e'), ['a="b c"', "d=e"]);
  assert.deepEqual(words("a=b\\ c  d"), ["a=b\\ c", "d"]);
  assert.deepEqual(words("a='x \"y' b=''"), ["a='x \"y'", "b=''"]);
  assert.deepEqual(words("'' x"), ["''", "x"]);
  assert.deepEqual(words("a=b` c", "`"), ["a=b` c"]);
  assert.deepEqual(words("  "), []);
});

Deno.test("splitCsv and mountFields: Go encoding/csv records", () => {
  assert.deepEqual(splitCsv("type=cache,target=/a"), ["type=cache", "target=/a"]);
  assert.deepEqual(splitCsv('"target=/a,b",ro'), ["target=/a,b", "ro"]);
  assert.deepEqual(splitCsv('a=""""'), ['a=""""']);
  assert.deepEqual(splitCsv(""), [""]);
  assert.deepEqual([...mountFields("Type=bind,FROM=build,ro")], [
    ["type", "bind"],
    ["from", "build"],
    ["ro", ""],
  ]);
});

Deno.test("parseFlag and isHeredocMarker", () => {
  assert.deepEqual(parseFlag("--from=build"), { name: "from", value: "build" });
  assert.deepEqual(parseFlag("--Chown=a=b"), { name: "chown", value: "a=b" });
  assert.deepEqual(parseFlag("--link"), { name: "link" });
  const names = new Set(["EOF"]);
  for (const w of ["<<EOF", "<<-EOF", '<<"EOF"', "<<'EOF'"]) {
    assert.ok(isHeredocMarker(w, names), w);
  }
  for (const w of ["EOF", "<<END", "<<\"EOF'"]) assert.ok(!isHeredocMarker(w, names), w);
});
