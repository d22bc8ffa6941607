/**
 * Conformance with BuildKit's meaning of a Dockerfile (`parse` without `--raw`): ARG/ENV scoping,
 * FROM forms and stage references, which words are expanded and how, the checks BuildKit makes
 * when it runs an instruction, and which stages can fail a build at all (BuildKit only runs the
 * stages the target needs). Each case names the BuildKit source or test that decides it; the
 * target platform is linux/arm64 and the building one linux/amd64, so TARGET* and BUILD* differ.
 * Errors and the stages a build runs are in `conformance_errors_test.ts`, the parser's own cases
 * in `conformance_raw_test.ts`.
 */
import assert from "node:assert/strict";
import { type Case, DIGEST, lastStep, plan, stage } from "./_conformance_helpers.ts";

const SCOPING: Case[] = [
  {
    name: "a meta ARG default naming a later meta ARG expands to nothing",
    ref: "dockerfile2llb/convert.go buildMetaArgs (in order, against the args so far)",
    text: "ARG B=$A\nARG A=1\nFROM busybox:${B:-none}\n",
    check: (p) => assert.equal(stage(p).base, "busybox:none"),
  },
  {
    name: "a --build-arg for a meta ARG feeds the later meta defaults",
    ref: "convert.go buildMetaArgs: buildArgs[kp.Key] wins, then AddOrReplace",
    text: "ARG A=x\nARG B=${A}y\nFROM busybox:$B\n",
    buildArgs: ["A=z"],
    check: (p) => {
      assert.equal(stage(p).base, "busybox:zy");
      assert.deepEqual(p.metaArgs.map((a) => a.value), ["z", "zy"]);
    },
  },
  {
    name: "a meta ARG redeclared with a default reading itself",
    ref: "convert.go buildMetaArgs (info.deps drops the key itself)",
    text: "ARG A=1\nARG A=${A}2\nFROM busybox:$A\n",
    check: (p) => assert.equal(stage(p).base, "busybox:12"),
  },
  {
    name: "a meta ARG redeclared without a value keeps the earlier value",
    ref: "convert.go buildMetaArgs: kp.Value == nil leaves args as they are",
    text: "ARG A=1\nARG A\nFROM busybox:$A\n",
    check: (p) => assert.equal(stage(p).base, "busybox:1"),
  },
  {
    name: "a --build-arg for a stage ARG is taken literally",
    ref: "convert.go dispatchArg: hasValue => arg.Value = buildArgValues[key], not expanded",
    text: "FROM busybox\nARG B=x\nWORKDIR /$B\n",
    buildArgs: ["B=$HOME"],
    expanded: ["/$HOME"],
  },
  {
    name: "a stage ARG default does not see a global ARG that was not redeclared",
    ref: "convert.go dispatchArg: the default is expanded with getEnv(d.state) only",
    text: "ARG G=1\nFROM busybox\nARG A=$G\nWORKDIR /x$A\n",
    expanded: ["/x"],
  },
  {
    name: "an ARG of an unrelated earlier stage is not visible, even redeclared",
    ref: "convert.go dispatchArg: no build arg, no default, no global => no value",
    text: "FROM busybox AS a\nARG A=1\nFROM busybox\nARG A\nWORKDIR /${A-unset}\n",
    expanded: ["/unset"],
  },
  {
    name: "a child stage inherits the parent's ARG; its ARG without value takes the build arg",
    ref: "convert.go dispatchState.init (state and buildArgs of the base) and dispatchArg",
    text: "FROM busybox AS a\nARG A=1\nENV E=2\nFROM a\nARG A\nWORKDIR /$A/$E\n",
    buildArgs: ["A=3"],
    expanded: ["/3/2"],
  },
  {
    name: "ARG declared without value and unset: ${v-w} and ${v:-w} see it unset",
    ref: "convert.go dispatchArg (no AddEnv without value); shell/lex.go processDollar",
    text: "FROM busybox\nARG A=1 B=$A C\nWORKDIR /$A/$B/${C-unset}/${C:-empty}\n",
    expanded: ["/1/1/unset/empty"],
  },
  {
    name: "ARG values are unquoted by the lexer; single quotes keep $",
    ref: "convert.go dispatchArg: shlex.ProcessWord(*arg.Value, env)",
    text: "FROM busybox\nARG A=\"a b\" B='$A' C=a\\ b\nWORKDIR /$A/$B/$C\n",
    expanded: ["/a b/$A/a b"],
  },
  {
    name: "testDefaultEnvWithArgs with an empty build arg",
    ref: 'frontend/dockerfile/dockerfile_args_test.go testDefaultEnvWithArgs ("empty")',
    text: "ARG image=idlebox\nFROM busy${image#idle} AS build\nARG my_arg\n" +
      'ENV my_arg "my_arg=${my_arg:-def_val}"\nENV my_trimmed_arg "${my_arg%%e*}"\n',
    buildArgs: ["my_arg="],
    check: (p) => {
      assert.equal(stage(p).base, "busybox");
      assert.deepEqual(lastStep(stage(p)).expanded, ["my_trimmed_arg", "my_arg=d"]);
      assert.deepEqual(stage(p).instructions[1].expanded, ["my_arg", "my_arg=def_val"]);
    },
  },
  {
    name: "TARGETSTAGE is unset until declared, then the --target name, in any stage",
    ref: "dockerfile_args_test.go testTargetStageNameArg",
    text: "FROM alpine AS base\nWORKDIR /x$TARGETSTAGE\nARG TARGETSTAGE\nWORKDIR /y$TARGETSTAGE\n" +
      "FROM scratch AS foo\nCOPY --from=base /out/ /\nFROM scratch\nCOPY --from=base /out/ /\n",
    target: "foo",
    check: (p) => {
      const [first, , second] = p.stages[0].instructions;
      assert.deepEqual([first.expanded, second.expanded], [["/x"], ["/yfoo"]]);
    },
  },
  {
    name: "TARGETSTAGE is the name of a named last stage",
    ref: 'dockerfile_args_test.go testTargetStageNameArg ("final")',
    text: "FROM alpine AS base\nARG TARGETSTAGE\nWORKDIR /$TARGETSTAGE\nFROM scratch AS final\n" +
      "COPY --from=base / /\n",
    check: (p) => assert.deepEqual(lastStep(p.stages[0]).expanded, ["/final"]),
  },
  {
    name: "a meta ARG without value named like a platform arg keeps the automatic value",
    ref: "convert.go buildMetaArgs over defaultArgs (platform.go)",
    text: "ARG TARGETARCH\nFROM busybox:$TARGETARCH\n",
    check: (p) => {
      assert.equal(stage(p).base, "busybox:arm64");
      assert.deepEqual(p.metaArgs, [{ name: "TARGETARCH", value: "arm64" }]);
    },
  },
  {
    name: "a meta ARG with a default replaces an automatic platform arg, also for ARG NAME",
    ref: "convert.go buildMetaArgs AddOrReplace; dispatchArg reads opt.globalArgs",
    text: "ARG TARGETARCH=foo\nFROM busybox:$TARGETARCH\nARG TARGETARCH\nWORKDIR /$TARGETARCH\n",
    check: (p) => {
      assert.equal(stage(p).base, "busybox:foo");
      assert.deepEqual(lastStep(stage(p)).expanded, ["/foo"]);
    },
  },
  {
    name: "a stage ARG default beats the automatic platform value",
    ref: "convert.go dispatchArg: hasDefault is used before the global value",
    text: "FROM busybox\nARG TARGETOS=custom\nWORKDIR /$TARGETOS\n",
    expanded: ["/custom"],
  },
  {
    name: "FROM --platform from a meta ARG; TARGETARCH stays the build's target",
    ref: "convert.go buildDispatchStates (platform); platform.go defaultArgs",
    text: "ARG P=linux/s390x\nFROM --platform=$P busybox\nARG TARGETARCH\nWORKDIR /$TARGETARCH\n",
    check: (p) => {
      assert.equal(stage(p).platform, "linux/s390x");
      assert.deepEqual(lastStep(stage(p)).expanded, ["/arm64"]);
    },
  },
  {
    name: "FROM --platform=$TARGETPLATFORM follows a --build-arg TARGETPLATFORM",
    ref: "platform.go defaultArgs: overrides[kv[0]] replaces the automatic value",
    text: "FROM --platform=$TARGETPLATFORM busybox\n",
    buildArgs: ["TARGETPLATFORM=linux/arm/v7"],
    check: (p) => assert.equal(stage(p).platform, "linux/arm/v7"),
  },
  {
    name: "FROM ${IMG:-busybox} without any ARG",
    ref: "convert.go buildDispatchStates: ProcessWordWithMatches(st.BaseName, globalArgs)",
    text: "FROM ${IMG:-busybox}\n",
    check: (p) => assert.equal(stage(p).base, "busybox"),
  },
  {
    name: "FROM ${IMG:-busybox} with a meta ARG set by --build-arg",
    ref: "convert.go buildMetaArgs + buildDispatchStates",
    text: "ARG IMG\nFROM ${IMG:-busybox}\n",
    buildArgs: ["IMG=alpine:3.20"],
    check: (p) => assert.equal(stage(p).base, "alpine:3.20"),
  },
  {
    name: "FROM ${V:+…} with an empty meta default",
    ref: "shell/lex.go processDollar (${v:+w}) in buildDispatchStates",
    text: "ARG V=\nFROM busybox${V:+:$V}\n",
    check: (p) => assert.equal(stage(p).base, "busybox"),
  },
  {
    name: "FROM a stage named by a meta ARG builds on that stage",
    ref: "convert.go addState: statesByName[expanded BaseName]",
    text: "ARG S=build\nFROM busybox AS build\nFROM $S\n",
    check: (p) => assert.equal(stage(p).baseStage, 0),
  },
  {
    name: "a stage named scratch shadows the empty image for later FROM scratch",
    ref: "convert.go addState (lookup by name before the scratch case of resolveReachableStages)",
    text: "FROM busybox AS scratch\nFROM scratch\n",
    check: (p) => assert.equal(stage(p).baseStage, 0),
  },
  {
    name: "testMultiStageCaseInsensitive: --from and --target in any case",
    ref: "dockerfile_multistage_test.go testMultiStageCaseInsensitive; findStateByName lower-cases",
    text:
      "FROM scratch AS STAge0\nCOPY foo bar\nFROM scratch AS staGE1\nCOPY --from=staGE0 bar baz\n" +
      "FROM scratch\nCOPY --from=stage1 baz bax\n",
    target: "Stage1",
    check: (p) => {
      assert.equal(p.target, 1);
      assert.deepEqual(stage(p).deps, [0]);
      assert.deepEqual(p.stages.map((s) => s.name), ["stage0", "stage1", null]);
    },
  },
  {
    name: "COPY --from=+0 is stage 0 (strconv.Atoi)",
    ref: "convert.go toCommand: strconv.Atoi(c.From) then findStateByIndex",
    text: "FROM busybox\nFROM scratch\nCOPY --from=+0 /a /b\n",
    check: (p) => assert.deepEqual(stage(p).deps, [0]),
  },
  {
    name: "RUN --mount from=0 is an image, not stage 0",
    ref: "dockerfile2llb/convert_runmount.go detectRunMount: findStateByName only",
    text: "FROM busybox\nFROM busybox\nRUN --mount=from=0,target=/x true\n",
    check: (p) => assert.deepEqual(lastStep(stage(p)).sources.map((s) => s.kind), ["image"]),
  },
  {
    name: "FROM scratch starts with BuildKit's default PATH",
    ref: "convert.go emptyImage / dispatchStages (PATH is always set)",
    text: "FROM scratch\nENV A=$PATH\n",
    expanded: ["A", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
  },
  {
    name: "proxy build args in any case reach RUN without being declared",
    ref:
      "convert.go proxyEnvFromBuildArgs (strings.EqualFold); dockerfile_args_test testBuiltinArgs",
    text: "FROM busybox\nARG FOO\nWORKDIR /x$http_proxy\n",
    buildArgs: ["FOO=foocontents", "http_proxy=hpvalue", "NO_PROXY=npvalue"],
    check: (p) => {
      assert.deepEqual([...p.proxyEnv], [["NO_PROXY", "npvalue"], ["http_proxy", "hpvalue"]]);
      assert.deepEqual(lastStep(stage(p)).expanded, ["/x"]);
    },
  },
  {
    name: "an empty FROM --platform= is no platform",
    ref: 'convert.go buildDispatchStates: if v := st.Platform; v != ""',
    text: "FROM --platform= busybox\n",
    check: (p) => assert.equal(stage(p).platform, null),
  },
];

const EXPANSION: Case[] = [
  {
    name: "ENV legacy form: the rest of the line, escapes removed, inner spaces kept",
    ref: "parser/line_parsers.go parseNameVal (old format) + instructions EnvCommand.Expand",
    text: "FROM busybox\nENV A a\\ b  c\n",
    expanded: ["A", "a b  c"],
  },
  {
    name: "ENV legacy form with quotes of both kinds",
    ref: "line_parsers.go parseNameVal; shell/lex.go ProcessWord",
    text: "FROM busybox\nENV A \"a b\"  'c $PATH'\n",
    expanded: ["A", "a b  c $PATH"],
  },
  {
    name: "LABEL keys with spaces in quotes, escaped spaces in values",
    ref: "line_parsers.go parseWords; commands.go LabelCommand.Expand (keys too)",
    text: 'FROM busybox\nLABEL "k k"="v v" \'x\'=y\\ z\n',
    expanded: ["k k", "v v", "x", "y z"],
  },
  {
    name: "ENV: \\$ in double quotes, a double quote in single quotes, ' in double quotes",
    ref: "shell/lex.go processDoubleQuote / processSingleQuote",
    text: 'FROM busybox\nENV A="\\$B" B=\'a"b\' C="it\'s"\n',
    expanded: ["A", "$B", "B", 'a"b', "C", "it's"],
  },
  {
    name: "ENV value holding '=' (split at the first)",
    ref: 'line_parsers.go parseNameVal: strings.SplitN(word, "=", 2)',
    text: "FROM busybox\nENV A=b=c\n",
    expanded: ["A", "b=c"],
  },
  {
    name: "ENV keys are expanded",
    ref: "commands.go expandKvp (key and value)",
    text: "FROM busybox\nARG K=key\nENV $K=v ${K}2=w\n",
    expanded: ["key", "v", "key2", "w"],
  },
  {
    name: "LABEL legacy form expanded",
    ref: "line_parsers.go parseNameVal (old format); LabelCommand.Expand",
    text: "FROM busybox\nARG V=1\nLABEL version $V two\n",
    expanded: ["version", "1 two"],
  },
  {
    name: "WORKDIR: single quotes, double quotes and an escaped $",
    ref: "commands.go WorkdirCommand.Expand; shell/lex.go",
    text: "FROM busybox\nARG D=x\nWORKDIR '$D'/\"$D\"/\\$D\n",
    expanded: ["$D/x/$D"],
  },
  {
    name: "USER with a ${v:-w} default",
    ref: "commands.go UserCommand.Expand",
    text: "FROM busybox\nUSER ${APP_USER:-nobody}:$GID\n",
    expanded: ["nobody:"],
  },
  {
    name: "VOLUME paths are trimmed before expansion",
    ref: "instructions/parse.go parseVolume: strings.TrimSpace",
    text: 'FROM busybox\nARG D=/data\nVOLUME [" $D ", "/v"]\n',
    expanded: ["/data", "/v"],
  },
  {
    name: "STOPSIGNAL from an ARG (a valid name)",
    ref: "commands.go StopSignalCommand.Expand; convert.go dispatchStopSignal",
    text: "FROM busybox\nARG S=SIGKILL\nSTOPSIGNAL $S\n",
    expanded: ["SIGKILL"],
  },
  {
    name: "EXPOSE with an IP and a host port",
    ref: "dockerfile2llb/convert_expose_test.go TestParsePortSpecs",
    text: "FROM busybox\nARG P=80\nEXPOSE 0.0.0.0:8080:$P/udp [::1]:80:80 ::::81\n",
    expanded: ["0.0.0.0:8080:80/udp", "[::1]:80:80", "::::81"],
  },
  {
    name: "EXPOSE: an empty protocol is tcp",
    ref: 'convert_expose.go splitProtoPort (case "")',
    text: "FROM busybox\nEXPOSE 80/\n",
    expanded: ["80/"],
  },
  {
    name: "COPY --chmod from an ARG without value is no chmod",
    ref: "dockerfile_copy_test (testCopyChmod: COPY --chmod=${mode}); commands.go CopyCommand",
    text: "FROM busybox\nARG mode\nCOPY --chmod=${mode} foo /footer\n",
    check: (p) => assert.deepEqual(lastStep(stage(p)).expandedFlags, ["--chmod="]),
  },
  {
    name: "ADD --checksum from an ARG for an HTTP source",
    ref: "commands.go AddCommand.Expand (checksum); convert_copy.go digest.Parse",
    text: `FROM busybox\nARG SUM=${DIGEST}\nADD --checksum=$SUM https://example.com/a.tgz /opt/\n`,
    check: (p) => assert.deepEqual(lastStep(stage(p)).expandedFlags, [`--checksum=${DIGEST}`]),
  },
  {
    name: "ADD --checksum with a commit for a git source",
    ref: "convert_copy.go dispatchCopy: isGitSource accepts a checksum",
    text: `FROM busybox\nADD --checksum=${"a".repeat(40)} https://github.com/a/b.git /src\n`,
    expanded: ["https://github.com/a/b.git", "/src"],
  },
  {
    name: "ADD an HTTP URL (COPY cannot)",
    ref: "convert_copy.go dispatchCopy: isHTTPSource for ADD",
    text: "FROM scratch\nADD http://example.com/a /b\n",
    expanded: ["http://example.com/a", "/b"],
  },
  {
    name: "COPY heredocs: backslashes and $ (testCopyHeredocSpecialSymbols)",
    ref: "frontend/dockerfile/dockerfile_heredoc_test.go testCopyHeredocSpecialSymbols",
    text: 'FROM scratch\nCOPY <<EOF quotefile\n"quotes in file"\nEOF\nCOPY <<EOF s1\n\\\nEOF\n' +
      'COPY <<EOF s2\n\\\\\nEOF\nCOPY <<EOF s3\n\\$\nEOF\nCOPY <<"EOF" r1\n\\\nEOF\n' +
      'COPY <<"EOF" r2\n\\\\\nEOF\nCOPY <<"EOF" r3\n\\$\nEOF\n',
    check: (p) => {
      assert.deepEqual(stage(p).instructions.map((i) => i.heredocs[0].content), [
        '"quotes in file"\n',
        "\n",
        "\\\n",
        "$\n",
        "\\\n",
        "\\\\\n",
        "\\$\n",
      ]);
    },
  },
  {
    name: "COPY heredocs: expansion, quoted delimiters, quotes in the body",
    ref: "dockerfile_heredoc_test.go testHeredocVarSubstitution",
    text: "FROM busybox as build\nARG name=world\nCOPY <<EOF /dest/c1\nHello ${name}!\nEOF\n" +
      "COPY <<'EOF' /dest/c2\nHello ${name}!\nEOF\nCOPY <<\"EOF\" /dest/c3\nHello ${name}!\nEOF\n" +
      "COPY <<EOF /dest/q1\nHello '${name}'!\nEOF\nCOPY <<EOF /dest/q2\nHello \"${name}\"!\nEOF\n" +
      "COPY <<\"EOF\" /dest/qdouble1\nHello '${name}'!\nEOF\n",
    check: (p) => {
      assert.deepEqual(stage(p).instructions.slice(1).map((i) => i.heredocs[0].content), [
        "Hello world!\n",
        "Hello ${name}!\n",
        "Hello ${name}!\n",
        "Hello 'world'!\n",
        'Hello "world"!\n',
        "Hello '${name}'!\n",
      ]);
    },
  },
  {
    name: "COPY <<-EOF: tabs stripped, then expanded",
    ref: "dockerfile_heredoc_test.go testHeredocIndent; instructions parseSourcesAndDest (Chomp)",
    text: "FROM busybox\nARG V=bar\nCOPY <<EOF /f\n\tfoo\nEOF\nCOPY <<-EOF /b\n\t$V\nEOF\n",
    check: (p) => {
      const [, f, b] = stage(p).instructions;
      assert.deepEqual([f.heredocs[0].content, b.heredocs[0].content], ["\tfoo\n", "bar\n"]);
    },
  },
  {
    name: "heredoc bodies use \\ even under # escape=`",
    ref: "convert.go dispatch: ExpandRaw with shell.NewLex('\\\\') and SkipProcessQuotes",
    text: "# escape=`\nFROM busybox\nARG A=1\nCOPY <<EOF /f\n`$A \\$A '$A'\nEOF\n",
    check: (p) => assert.equal(lastStep(stage(p)).heredocs[0].content, "`1 $A '1'\n"),
  },
  {
    name: "two heredocs of one COPY are expanded each",
    ref: "dockerfile_heredoc_test.go testCopyHeredoc (double/); SourcesAndDest.ExpandRaw",
    text: "FROM busybox\nARG A=1\nCOPY <<EOF <<EOF2 double/\nfirst $A\nEOF\nsecond $A\nEOF2\n",
    check: (p) =>
      assert.deepEqual(lastStep(stage(p)).heredocs, [
        { name: "EOF", content: "first 1\n" },
        { name: "EOF2", content: "second 1\n" },
      ]),
  },
  {
    name: "RUN heredocs are left to the shell",
    ref:
      "commands.go: RunCommand has no ExpandRaw; dockerfile_heredoc_test testHeredocVarSubstitution r2",
    text: 'FROM busybox\nARG name=world\nRUN <<EOF\necho "Hello ${name}!"\nEOF\n',
    check: (p) => {
      const run = lastStep(stage(p));
      assert.deepEqual([run.expanded, run.heredocs], [["<<EOF"], []]);
      assert.equal(run.instruction.heredocs[0].content, 'echo "Hello ${name}!"\n');
    },
  },
  {
    name: "ONBUILD triggers run first in the child, with the variables it inherits",
    ref: "convert.go resolveStages/initOnBuildTriggers (d.base's OnbuildCommands)",
    text: "FROM busybox AS a\nARG X=1\nONBUILD WORKDIR /$X\nFROM a\nARG X=2\n",
    check: (p) => {
      assert.deepEqual(stage(p).triggers.map((t) => t.expanded), [["/1"]]);
      assert.deepEqual(lastStep(stage(p)).expanded, ["X", "2"]);
    },
  },
  {
    name: "ONBUILD triggers of a grandparent stage are not run",
    ref: "convert.go dispatchState.init: ds.image.Config.OnBuild = nil for stage bases",
    text: "FROM busybox AS a\nONBUILD WORKDIR /a\nFROM a AS b\nFROM b\n",
    check: (p) => {
      assert.equal(p.stages[1].triggers.length, 1);
      assert.equal(p.stages[2].triggers.length, 0);
    },
  },
  {
    name: "an inherited ONBUILD COPY --from makes the target need that stage",
    ref: "convert.go resolveStages: onbuild triggers add deps (newDeps)",
    text: "FROM busybox AS a\nFROM busybox AS b\nONBUILD COPY --from=a /x /y\nFROM b\n",
    check: (p) => assert.deepEqual(stage(p).deps, [0]),
  },
  {
    name: "an empty ADD --checksum= is no checksum",
    ref: 'convert_copy.go dispatchCopy: if cfg.checksum != ""',
    text: "FROM busybox\nADD --checksum= a.tgz /b/\n",
    expanded: ["a.tgz", "/b/"],
  },
  {
    name: "RUN --mount fields from ARGs are checked together once expanded",
    ref: "commands_runmount.go parseMount: with no expander only `from` is checked",
    text: "FROM busybox\nARG T=cache\nRUN --mount=type=$T,target=/x,sharing=locked true\n",
    check: (p) =>
      assert.deepEqual(lastStep(stage(p)).expandedFlags, [
        "--mount=type=cache,target=/x,sharing=locked",
      ]),
  },
  {
    name: "testCopyVarSubstitution: a source from a legacy ENV",
    ref: "frontend/dockerfile/dockerfile_copy_test.go testCopyVarSubstitution",
    text: "FROM scratch AS base\nENV FOO bar\nCOPY $FOO baz\n",
    expanded: ["bar", "baz"],
  },
  {
    name: "testCopyEmptyDestDir: a destination that expands to nothing",
    ref: "dockerfile_copy_test.go testCopyEmptyDestDir (the working directory)",
    text: 'FROM busybox\nENV empty=""\nCOPY testfile $empty\n',
    expanded: ["testfile", ""],
  },
  {
    name: "testCopyChmod: --chmod=${mode} from a --build-arg",
    ref: "dockerfile_copy_test.go testCopyChmod (build-arg:mode=755)",
    text: "FROM busybox AS base\nARG mode\nCOPY --chmod=${mode} foo /footer\n",
    buildArgs: ["mode=755"],
    check: (p) => assert.deepEqual(lastStep(stage(p)).expandedFlags, ["--chmod=755"]),
  },
];

for (const c of [...SCOPING, ...EXPANSION]) {
  Deno.test(`conformance: ${c.name}`, () => {
    const p = plan(c.text, c.buildArgs, c.target);
    if (c.expanded) assert.deepEqual(lastStep(stage(p)).expanded, c.expanded, c.ref);
    c.check?.(p);
  });
}
