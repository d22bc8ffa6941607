/**
 * Conformance with BuildKit's errors and with which stages can fail a build: BuildKit checks some
 * things for every stage (the FROM line, `COPY --from`, cycles) and everything else only when it
 * runs a stage, and it runs only the stages the target needs. Each case names the BuildKit source
 * or test that decides it.
 */
import assert from "node:assert/strict";
import { describeError, KanikoError } from "../../lib/errors.ts";
import { type Case, DIGEST, lastStep, plan, stage } from "./_conformance_helpers.ts";

/** Errors BuildKit reports (each must be one line naming `Dockerfile:LINE`). */
const ERRORS: Case[] = [
  {
    name: "STOPSIGNAL from an ARG naming no signal",
    ref: "convert.go dispatchStopSignal: signal.ParseSignal",
    text: "FROM busybox\nARG S=FOO\nSTOPSIGNAL $S\n",
    error: /invalid signal "FOO"/,
    line: 3,
  },
  {
    name: "EXPOSE from an ARG that is not a port",
    ref: "convert_expose.go parsePortSpec: invalid containerPort",
    text: "FROM busybox\nARG P=abc\nEXPOSE $P\n",
    error: /invalid port "abc"/,
    line: 3,
  },
  {
    name: "EXPOSE of a quoted expansion stays one word, not a port",
    ref: "convert_expose.go dispatchExpose: ProcessWords keeps quoted spaces",
    text: 'FROM busybox\nARG P="80 443"\nEXPOSE "$P"\n',
    error: /invalid port "80 443"/,
    line: 3,
  },
  {
    name: "EXPOSE with a host name instead of an IP",
    ref: "convert_expose_test.go TestParsePortSpecs (localhost:1234:1234/tcp)",
    text: "FROM busybox\nEXPOSE localhost:1234:1234/tcp\n",
    error: /invalid IP address "localhost"/,
    line: 2,
  },
  {
    name: "EXPOSE: the protocol is all that follows the first /",
    ref: 'convert_expose.go splitProtoPort: strings.Cut(rawPort, "/")',
    text: "FROM busybox\nEXPOSE 80/tcp/x\n",
    error: /invalid protocol "tcp\/x"/,
    line: 2,
  },
  {
    name: "EXPOSE: host and container ranges of different lengths",
    ref: "convert_expose.go parsePortSpec: invalid ranges specified for container and host Ports",
    text: "FROM busybox\nEXPOSE 1234-1236:80-81\n",
    error: /invalid ranges for container and host ports/,
    line: 2,
  },
  {
    name: "VOLUME expanding to nothing",
    ref: "convert.go dispatchVolume: VOLUME specified can not be an empty string",
    text: "FROM busybox\nVOLUME $UNSET\n",
    error: /VOLUME specified can not be an empty string/,
    line: 2,
  },
  {
    name: "COPY --chmod from an ARG out of range",
    ref: "convert_copy.go dispatchCopy: ParseUint(chmod, 8, 32) and p > 0o7777",
    text: "FROM busybox\nARG M=17777\nCOPY --chmod=$M a b\n",
    error: /--chmod: invalid mode "17777"/,
    line: 3,
  },
  {
    name: "COPY from a URL",
    ref: "dockerfile2llb/convert_test.go TestDockerfileParsing: source can't be a URL for COPY",
    text: "FROM scratch\nCOPY http://github.com/moby/buildkit/blob/master/README.md /\n",
    error: /source can't be a URL for COPY/,
    line: 2,
  },
  {
    name: "COPY from a git repository",
    ref: "convert_copy.go dispatchCopy: source can't be a git ref for COPY",
    text: "FROM scratch\nARG REPO=git@github.com:moby/buildkit.git\nCOPY $REPO /src\n",
    error: /source can't be a git ref for COPY/,
    line: 3,
  },
  {
    name: "ADD --checksum with two sources",
    ref: "convert_copy.go dispatchCopy: checksum can't be specified for multiple sources",
    text: `FROM scratch\nADD --checksum=${DIGEST} https://a.example/x https://a.example/y /d/\n`,
    error: /checksum can't be specified for multiple sources/,
    line: 2,
  },
  {
    name: "ADD --checksum with a local source",
    ref: "convert_copy.go dispatchCopy: checksum requires HTTP(S) or Git sources",
    text: `FROM scratch\nADD --checksum=${DIGEST} local.tgz /d/\n`,
    error: /checksum requires HTTP\(S\) or Git sources/,
    line: 2,
  },
  {
    name: 'FROM "" AS foo',
    ref: "convert_test.go TestDockerfileParsing; convert.go base name should not be blank",
    text: 'FROM "" AS foo\n',
    error: /base name \(""\) should not be blank/,
    line: 1,
  },
  {
    name: "FROM a stage by a name in other capitals is an (invalid) image",
    ref:
      "convert.go addState: statesByName[BaseName] is case-sensitive; reference.ParseNormalizedNamed",
    text: "FROM busybox AS Build\nFROM BUILD\n",
    error: /repository name must be lowercase/,
    line: 2,
  },
  {
    name: "an inherited ONBUILD COPY --from=$X",
    ref:
      "convert.go initOnBuildTriggers -> toCommand: variable expansion is not supported for --from",
    text: "FROM busybox AS a\nONBUILD COPY --from=$X /a /b\nFROM a\n",
    error: /variable expansion is not supported for --from/,
    line: 2,
  },
  {
    name: "testOutOfOrderStage: COPY --from a later stage the target needs",
    ref: "dockerfile_multistage_test.go testOutOfOrderStage",
    text: "FROM busybox AS target\nCOPY --from=build / /out\nFROM alpine AS build\n" +
      "COPY /Dockerfile /d2\nFROM target\n",
    error: /needs to be defined before current stage/,
    line: 2,
  },
  {
    name: "an unknown flag is case-sensitive",
    ref: "instructions/bflag.go BFlags.Parse: bf.flags[arg]",
    text: "FROM --PLATFORM=linux/amd64 busybox\n",
    error: /unknown flag: --PLATFORM/,
    line: 1,
  },
  {
    name: "USER takes no flags",
    ref: "instructions/parse.go parseUser: req.flags.Parse()",
    text: "FROM busybox\nUSER --x nobody\n",
    error: /USER: unknown flag: --x/,
    line: 2,
  },
  {
    name: "RUN --network from a variable is not expanded",
    ref: "commands_runnetwork.go runNetworkPostHook (parse time)",
    text: "FROM busybox\nARG NET=none\nRUN --network=$NET true\n",
    error: /invalid network mode "\$NET"/,
    line: 3,
  },
  {
    name: "RUN --mount type from an ARG that is no mount type",
    ref: "commands_runmount.go setMountState(cmd, expander) at dispatch",
    text: "FROM busybox\nARG T=nfs\nRUN --mount=type=$T,target=/x true\n",
    error: /unsupported mount type "nfs"/,
    line: 3,
  },
  {
    name: "an inherited trigger with an unknown flag",
    ref: "convert.go initOnBuildTriggers -> instructions.ParseCommand (bflag.go)",
    text: "FROM busybox AS a\nONBUILD COPY --foo a b\nFROM a\n",
    error: /COPY: unknown flag: --foo/,
    line: 2,
  },
  {
    name: "an inherited trigger that is no instruction",
    ref: "convert.go initOnBuildTriggers -> ParseInstruction: unknown instruction",
    text: "FROM busybox AS a\nONBUILD FOO a b\nFROM a\n",
    error: /unknown instruction: FOO/,
    line: 2,
  },
  {
    name: "testCopyInvalidChmod: 64a",
    ref: "dockerfile_copy_test.go testCopyInvalidChmod (invalid chmod parameter: '64a')",
    text: "FROM scratch\nCOPY --chmod=64a foo /\n",
    error: /--chmod: invalid mode "64a"/,
    line: 2,
  },
  {
    name: "testCopyInvalidChmod: 10000 is more than 07777",
    ref: "dockerfile_copy_test.go testCopyInvalidChmod (invalid chmod parameter: '10000')",
    text: "FROM scratch\nCOPY --chmod=10000 foo /\n",
    error: /--chmod: invalid mode "10000"/,
    line: 2,
  },
];

for (const c of ERRORS) {
  Deno.test(`conformance (error): ${c.name}`, () => {
    let err: unknown;
    try {
      plan(c.text, c.buildArgs, c.target);
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof KanikoError, `expected an error (${c.ref}), got ${err}`);
    const message = describeError(err);
    assert.ok(!message.includes("\n"), message);
    assert.match(message, c.error!, c.ref);
    if (c.line) assert.match(message, new RegExp(`^Dockerfile:${c.line}: `));
  });
}

/** Flags BuildKit never parses: any is accepted. */
Deno.test("conformance: ARG and STOPSIGNAL ignore flags (parse.go parseArg, parseStopSignal)", () => {
  const p = plan("FROM busybox\nARG --foo=bar A=1\nSTOPSIGNAL --x SIGTERM\nWORKDIR /$A\n");
  assert.deepEqual(lastStep(stage(p)).expanded, ["/1"]);
});

/** Stages BuildKit does not run: their steps cannot fail the build. */
const NOT_RUN: Case[] = [
  {
    name: "a failing expansion in a stage after the --target",
    ref: "convert.go dispatchStages: only allReachable stages are dispatched",
    text: "FROM busybox AS a\nRUN true\nFROM busybox AS b\nARG X\nWORKDIR ${X:?required}\n",
    target: "a",
    error: /X: required \(ignored: stage "b" is not needed by the target\)/,
    line: 5,
  },
  {
    name: "a failing expansion in an earlier stage the target does not need",
    ref: "convert.go dispatchStages / allReachableStages",
    text: "FROM busybox AS b\nARG X\nWORKDIR ${X:?required}\nFROM busybox AS a\nRUN true\n",
    error: /X: required \(ignored: stage "b" is not needed by the target\)/,
    line: 3,
  },
  {
    name: "a forward COPY --from in a stage the target does not need",
    ref: "convert.go dispatch (COPY): 'cannot copy from stage' only for dispatched stages",
    text: "FROM busybox AS a\nCOPY --from=b / /\nFROM busybox AS b\nFROM busybox\n",
    error: /cannot read from stage "b".*\(ignored: stage "a" is not needed/,
    line: 2,
  },
  {
    name: "an invalid EXPOSE from a variable in a stage the target does not need",
    ref: "convert_expose.go dispatchExpose runs only for dispatched stages",
    text: "FROM busybox AS a\nARG P=nope\nEXPOSE $P\nFROM scratch\n",
    error: /invalid port "nope" \(ignored: stage "a"/,
    line: 3,
  },
  {
    name: "ONBUILD COPY --from=$X in a stage nothing builds on",
    ref:
      "convert.go toCommand ignores OnbuildCommand; initOnBuildTriggers only for reachable children",
    text: "FROM busybox AS a\nONBUILD COPY --from=$X /a /b\nFROM busybox\n",
  },
  {
    name: "an ONBUILD trigger with an unknown flag that no stage runs",
    ref: "instructions/parse.go parseOnBuild checks only the trigger's keyword",
    text: "FROM busybox AS a\nONBUILD COPY --foo a b\nFROM busybox\n",
  },
];

for (const c of NOT_RUN) {
  Deno.test(`conformance (not run): ${c.name}`, () => {
    const p = plan(c.text, c.buildArgs, c.target);
    if (!c.error) {
      assert.deepEqual(p.warnings, [], c.ref);
      return;
    }
    const failed = p.stages.flatMap((s) => s.instructions).filter((i) => i.error);
    assert.equal(failed.length, 1, c.ref);
    assert.equal(failed[0].line, c.line);
    assert.deepEqual(failed[0].expanded, failed[0].args, "the step stays as written");
    assert.equal(p.warnings.length, 1);
    assert.match(p.warnings[0], c.error);
    assert.match(p.warnings[0], new RegExp(`^Dockerfile:${c.line}: `));
  });
}

Deno.test("conformance: the same step fails when the target needs its stage", () => {
  const text = "FROM busybox AS b\nARG X\nWORKDIR ${X:?required}\nFROM b AS a\nRUN true\n";
  assert.throws(() => plan(text), /Dockerfile:3: .*X: required$/);
  assert.deepEqual(lastStep(stage(plan(text, ["X=/x"]), 0)).expanded, ["/x"]);
});
