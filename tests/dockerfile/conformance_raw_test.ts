/**
 * Conformance of `parse --raw` and of the per-instruction rules with BuildKit's parser
 * (`frontend/dockerfile/parser`) and `instructions/parse.go`, on cases its corpus does not have:
 * here-documents from BuildKit's integration tests, the legacy ENV form, quoting that survives
 * parsing, flags BuildKit never parses, and the errors `instructions.Parse` reports. Each case names
 * the BuildKit source that decides it. The CLI's own output is checked at the end.
 */
import assert from "node:assert/strict";
import type { Heredoc } from "../../lib/dockerfile/ast.ts";
import { validateDockerfile } from "../../lib/dockerfile/instruction_args.ts";
import { parseDockerfile } from "../../lib/dockerfile/parser.ts";
import { type ParseCase, registerCases } from "./_parser_helpers.ts";
import { runCli } from "../_fake_registry.ts";

const doc = (name: string, content: string, extra: Partial<Heredoc> = {}): Heredoc => ({
  name,
  content,
  expand: true,
  chomp: false,
  ...extra,
});

const RAW: (ParseCase & { ref: string })[] = [
  {
    name: "testRunComplexHeredoc: two here-documents over a continuation",
    ref: "dockerfile_heredoc_test.go testRunComplexHeredoc; parser.go heredocsFromLine",
    input: "RUN cat <<EOF1 | tr '[:upper:]' '[:lower:]' > ./out1; \\\n" +
      "\tcat <<EOF2 | tr '[:lower:]' '[:upper:]' > ./out2\nhello WORLD\nEOF1\nHELLO world\nEOF2\n",
    fields: {
      line: 1,
      endLine: 6,
      args: [
        "cat <<EOF1 | tr '[:upper:]' '[:lower:]' > ./out1; \tcat <<EOF2 | tr '[:lower:]' '[:upper:]' > ./out2",
      ],
      heredocs: [doc("EOF1", "hello WORLD\n"), doc("EOF2", "HELLO world\n")],
    },
  },
  {
    name: "testRunComplexHeredoc: here-documents on file descriptors",
    ref: "dockerfile_heredoc_test.go testRunComplexHeredoc; parser.go reHeredoc (\\d*)",
    input: "RUN <<EOF 3<<IN1 4<<IN2 awk -f -\nBEGIN {}\nEOF\nhello WORLD\nIN1\nHELLO world\nIN2\n",
    fields: {
      endLine: 7,
      heredocs: [
        doc("EOF", "BEGIN {}\n"),
        doc("IN1", "hello WORLD\n", { fd: 3 }),
        doc("IN2", "HELLO world\n", { fd: 4 }),
      ],
    },
  },
  {
    name: "an escaped delimiter still expands (BuildKit counts quotes only)",
    ref: "parser.go heredocFromMatch: expand = wordQuoteCount == wordRawQuoteCount",
    input: "COPY <<\\EOF /f\n$A\nEOF\n",
    fields: { heredocs: [doc("EOF", "$A\n")] },
  },
  {
    name: "testHeredocIndent: <<- strips tabs of the body of RUN",
    ref: "dockerfile_heredoc_test.go testHeredocIndent; parser.go ChompHeredocContent",
    input: 'RUN <<-EOF sh > /dest/bar3-run\necho "\n\tbar"\n\tEOF\n',
    fields: { heredocs: [doc("EOF", 'echo "\nbar"\n', { chomp: true })] },
  },
  {
    name: "testOnBuildHeredoc: ONBUILD RUN <<EOF",
    ref: "dockerfile_heredoc_test.go testOnBuildHeredoc; parser.go canContainHeredoc",
    input: 'ONBUILD RUN <<EOF\necho "hello world" >> /dest\nEOF\n',
    check: (df) => {
      const ins = df.instructions[0];
      assert.deepEqual(ins.heredocs, []);
      assert.deepEqual(ins.onbuild?.heredocs, [doc("EOF", 'echo "hello world" >> /dest\n')]);
      assert.equal(ins.endLine, 3);
    },
  },
  {
    name: "a here-document marker in the exec form of COPY is a plain argument",
    ref: "parser.go canContainHeredoc: json nodes take no here-documents",
    input: 'COPY ["<<EOF", "/dest"]\nEOF\n',
    dump: ['(copy "<<EOF" "/dest")', '(eof "")'],
  },
  {
    name: "ENV legacy form with tabs keeps the inner blanks",
    ref: "line_parsers.go parseNameVal: reWhitespace.Split(rest, 2)",
    input: "ENV a\t  b \t c  \n",
    fields: { args: ["a", "b \t c"], rawArgs: ["a", "b \t c"], legacyKeyValue: true },
  },
  {
    name: "ENV legacy form: a value that holds =",
    ref: "line_parsers.go parseNameVal: the first word decides the form",
    input: "ENV A b=c d\n",
    fields: { args: ["A", "b=c d"], legacyKeyValue: true },
  },
  {
    name: "LABEL: escaped quotes in double quotes, an escaped single quote outside",
    ref: "line_parsers.go parseWords (escape kept in the word, removed by the lexer)",
    input: 'LABEL a="x \\"q\\"" b=it\\\'s\n',
    fields: { args: ["a", 'x "q"', "b", "it's"], rawArgs: ["a", '"x \\"q\\""', "b", "it\\'s"] },
  },
  {
    name: "EXPOSE and VOLUME keep quotes in their words",
    ref: "line_parsers.go parseStringsWhitespaceDelimited (quotes are the lexer's)",
    input: "EXPOSE \"80\" '443/udp'\n",
    fields: { args: ['"80"', "'443/udp'"] },
  },
  {
    name: "a shell-form VOLUME splits inside quotes",
    ref: "line_parsers.go parseMaybeJSONToList -> parseStringsWhitespaceDelimited",
    input: 'VOLUME "/a b"\n',
    fields: { args: ['"/a', 'b"'] },
  },
  {
    name: "a quoted --platform value",
    ref: "parser/split_command.go extractBuilderFlags (quotes removed)",
    input: 'FROM --platform="linux/amd64" busybox\n',
    fields: { flags: ["--platform=linux/amd64"], args: ["busybox"] },
  },
  {
    name: "FROM … As Name",
    ref: 'instructions/parse.go parseBuildStageName: strings.EqualFold(args[1], "as")',
    input: "FROM busybox As Build\n",
    fields: { args: ["busybox", "As", "Build"] },
  },
  {
    name: "flags of ARG and STOPSIGNAL are kept as written",
    ref: "parser/split_command.go extractBuilderFlags (every instruction)",
    input: "ARG --foo A=1\nSTOPSIGNAL --x SIGTERM\n",
    check: (df) => {
      assert.deepEqual(df.instructions.map((i) => i.flags), [["--foo"], ["--x"]]);
      validateDockerfile(df);
    },
  },
  {
    name: "CRLF and a byte-order mark with a directive",
    ref: "parser.go Parse: utf8bom trimmed, trimNewline(\\r\\n)",
    input: "\ufeff# escape=`\r\nFROM a\r\nRUN x `\r\n y\r\nENV k=v\r\n",
    check: (df) => {
      assert.equal(df.escape, "`");
      assert.deepEqual(df.instructions.map((i) => i.args), [["a"], ["x  y"], ["k", "v"]]);
    },
  },
  {
    name: "an unknown directive before escape ends the directives",
    ref: "parser/directives.go DirectiveParser.ParseLine (unknown key => done)",
    input: "# foo=bar\n# escape=`\nRUN a `\n",
    fields: { args: ["a `"] },
    file: { escape: "\\", directives: {} },
  },
];

registerCases("conformance (raw)", RAW);

/** What `instructions.Parse` rejects (parse.go), whatever stage it is in. */
const RULES: [string, string, RegExp][] = [
  ["FROM busybox AS\n", "parse.go parseBuildStageName", /FROM: requires either one or three/],
  ["FROM busybox AS b c\n", "parse.go parseBuildStageName", /FROM: requires either one or three/],
  ["FROM a\nONBUILD FROM x\n", "parse.go parseOnBuild", /FROM isn't allowed as an ONBUILD trigger/],
  [
    "FROM a\nCOPY a <<EOF\nx\nEOF\n",
    "parse.go parseSourcesAndDest",
    /cannot accept a heredoc as a/,
  ],
  ["FROM a\nHEALTHCHECK CMD\n", "parse.go parseHealthcheck", /missing command after HEALTHCHECK/i],
  ["FROM a\nARG =x\n", "parse.go parseArg errBlankCommandNames", /ARG: names can not be blank/],
  ["FROM a\nSHELL /bin/sh -c\n", "parse.go parseShell errNotJSON", /SHELL: .*JSON form/],
  ['FROM a\nVOLUME [" "]\n', "parse.go parseVolume (TrimSpace)", /can not be an empty string/],
  ["FROM a\nCOPY --from=x --from=y a b\n", "bflag.go Parse", /duplicate flag specified: --from/],
  ["FROM a\nCOPY --link=maybe a b\n", "bflag.go Parse (boolType)", /expecting boolean value/],
];

Deno.test("conformance (rules): what instructions.Parse rejects", () => {
  for (const [text, ref, error] of RULES) {
    const df = parseDockerfile(text);
    assert.throws(() => validateDockerfile(df), error, `${ref}: ${JSON.stringify(text)}`);
  }
});

Deno.test("conformance (rules): what only running a stage could reject passes the rules", () => {
  // EXPOSE/STOPSIGNAL values the lexer changes are checked once expanded (convert_expose.go,
  // dispatchStopSignal), never literally: BuildKit's ProcessWords unquotes "80" first.
  const df = parseDockerfile('FROM a\nEXPOSE "80" \'443/udp\'\nSTOPSIGNAL "SIGTERM"\n');
  validateDockerfile(df);
});

async function cli(text: string, ...args: string[]) {
  const dir = await Deno.makeTempDir({ prefix: "kaniko-conformance-" });
  try {
    await Deno.writeTextFile(`${dir}/Dockerfile`, text);
    return await runCli(["parse", "--dockerfile", `${dir}/Dockerfile`, ...args]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("conformance (CLI): parse follows the stages BuildKit runs, parse --raw BuildKit's tree", async () => {
  const broken = "FROM busybox AS a\nRUN true\nFROM busybox AS b\nWORKDIR ${X:?required}\n";
  const ok = await cli(broken, "--target", "a");
  assert.equal(ok.code, 0, ok.err);
  assert.equal(JSON.parse(ok.out).target, 0);
  assert.match(ok.err, /Dockerfile:4: .*X: required \(ignored: stage "b" is not needed/);
  const fails = await cli(broken);
  assert.equal(fails.code, 1);
  assert.match(fails.err, /^error: \S*Dockerfile:4: .*X: required\n$/);
  const url = await cli("FROM scratch\nCOPY https://example.com/x /\n");
  assert.match(url.err, /^error: \S*Dockerfile:2: .*source can't be a URL for COPY/);
  const raw = await cli("FROM a\r\nENV a b  c\r\n", "--raw");
  assert.equal(raw.code, 0, raw.err);
  const env = JSON.parse(raw.out).instructions[1];
  assert.deepEqual([env.keyword, env.args, env.line], ["ENV", ["a", "b  c"], 2]);
});
