/**
 * Parser table tests: directives, continuations, comments, keywords, flags, line numbers and the
 * file-level errors. Expected trees are written in BuildKit's notation (`lib/dockerfile/dump.ts`).
 */
import assert from "node:assert/strict";
import { type ParseCase, registerCases } from "./_parser_helpers.ts";

const DIRECTIVES: ParseCase[] = [
  {
    name: "escape=` makes the backtick the continuation character",
    input: "# escape=`\nFROM a\nRUN echo `\n  hi\n",
    dump: ['(from "a")', '(run "echo   hi")'],
    file: { escape: "`", directives: { escape: "`" } },
  },
  {
    name: "Windows-style escape keeps backslashes literal",
    input: "# escape=`\nFROM mcr.microsoft.com/windows/servercore\nRUN dir c:\\\nWORKDIR c:\\app\n",
    dump: [
      '(from "mcr.microsoft.com/windows/servercore")',
      '(run "dir c:\\\\")',
      '(workdir "c:\\\\app")',
    ],
  },
  {
    name: "directive names are case-insensitive",
    input: "# ESCAPE = `\nFROM a\nRUN a `\nb\n",
    dump: ['(from "a")', '(run "a b")'],
    file: { directives: { escape: "`" } },
  },
  {
    name: "escape=\\ explicitly",
    input: "#escape=\\\nFROM a\nRUN a \\\nb\n",
    dump: ['(from "a")', '(run "a b")'],
    file: { escape: "\\" },
  },
  {
    name: "a directive after an instruction is a comment",
    input: "FROM a\n# escape=`\nRUN a `\nRUN b\n",
    dump: ['(from "a")', '(run "a `")', '(run "b")'],
    file: { escape: "\\", directives: {} },
  },
  {
    name: "an empty line ends the directives",
    input: "\n# escape=`\nFROM a\nRUN x `\nRUN y\n",
    dump: ['(from "a")', '(run "x `")', '(run "y")'],
    file: { directives: {} },
  },
  {
    name: "an unknown directive ends the directives",
    input: "# foo=bar\n# escape=`\nFROM a\nRUN x `\nRUN y\n",
    file: { escape: "\\", directives: {} },
  },
  {
    name: "syntax, escape and check are all recorded",
    input: "# syntax=docker/dockerfile:1.7\n# escape=`\n# check=skip=all;error=true\nFROM a\n",
    file: {
      escape: "`",
      directives: { syntax: "docker/dockerfile:1.7", escape: "`", check: "skip=all;error=true" },
    },
  },
  {
    name: "blanks around the name, = and value are allowed",
    input: "#  escape \t=  `  \nFROM a\n",
    file: { escape: "`" },
  },
  {
    name: "the value keeps inner spaces, not trailing ones",
    input: "# syntax = docker/dockerfile:1 // opts \nFROM a\n",
    file: { directives: { syntax: "docker/dockerfile:1 // opts" } },
  },
  {
    name: "leading blanks before the directive are allowed",
    input: "  # escape=`\n\nFROM a\nENV foo `\nENV bar baz\n",
    dump: ['(from "a")', '(env "foo" "ENV bar baz")'],
  },
  {
    name: "a shebang line is a comment that ends the directives",
    input: "#!/usr/bin/env docker\n# escape=`\nFROM a\n",
    file: { escape: "\\", directives: {} },
  },
  {
    name: "a byte-order mark before a directive",
    input: "\uFEFF# escape=`\nFROM a\n",
    file: { escape: "`" },
  },
  {
    name: "an empty value is no directive",
    input: "# escape=\nFROM a\n",
    file: { directives: {} },
  },
  {
    name: "a repeated escape directive fails",
    input: "# escape=`\n# escape=`\nFROM a\n",
    error: /^Dockerfile:2: only one escape parser directive/,
  },
  {
    name: "a repeated syntax directive fails",
    input: "# syntax=a\n# Syntax=b\nFROM a\n",
    error: /only one syntax parser directive/,
  },
  {
    name: "an invalid escape character fails",
    input: "# escape=x\nFROM a\n",
    error: /^Dockerfile:1: invalid escape token 'x'/,
  },
  {
    name: "a two-character escape fails",
    input: "# escape=\\\\\nFROM a\n",
    error: /invalid escape token/,
  },
  {
    name: "an escape of blanks only fails",
    input: "# escape=   \nFROM a\n",
    error: /invalid escape token ' '/,
  },
];

const CONTINUATIONS: ParseCase[] = [
  { name: "continuation keeps the indentation", input: "RUN a \\\n  b\n", dump: ['(run "a   b")'] },
  {
    name: "comment lines inside a continuation are skipped",
    input: "RUN a \\\n# note\n  b\n",
    dump: ['(run "a   b")'],
    fields: { line: 1, endLine: 3 },
  },
  {
    name: "indented comment lines inside a continuation are skipped",
    input: "RUN a \\\n    # note \\\n  b\n",
    dump: ['(run "a   b")'],
  },
  {
    name: "an empty line inside a continuation is skipped with a warning",
    input: "FROM x\nRUN a \\\n\n  b\n",
    dump: ['(from "x")', '(run "a   b")'],
    check: (df) => {
      assert.equal(df.warnings.length, 1);
      assert.equal(df.warnings[0].line, 3);
      assert.match(df.warnings[0].message, /empty continuation line/);
    },
  },
  {
    name: "a blank line inside a continuation is skipped too",
    input: "RUN a \\\n \t \n  b\n",
    dump: ['(run "a   b")'],
  },
  {
    name: "escape at the end of the file",
    input: "FROM a\nRUN b \\",
    dump: ['(from "a")', '(run "b")'],
  },
  {
    name: "escape at the end of the file after a newline",
    input: "FROM a\nRUN b \\\n",
    dump: ['(from "a")', '(run "b")'],
  },
  {
    name: "escape followed by blanks still continues",
    input: "RUN a \\  \t\nb\n",
    dump: ['(run "a b")'],
  },
  {
    name: "an escaped escape does not continue",
    input: "RUN echo \\\\\nRUN b\n",
    dump: ['(run "echo \\\\\\\\")', '(run "b")'],
  },
  {
    name: "a line of only the escape continues with nothing",
    input: "ENV E hello\\\n\\\nworld\n",
    dump: ['(env "E" "helloworld")'],
  },
  {
    name: "continuation in the keyword's arguments",
    input: "FROM \\\n  alpine\n",
    dump: ['(from "alpine")'],
  },
  {
    name: "continuation inside a JSON array",
    input: 'CMD ["a", \\\n "b"]\n',
    dump: ['(cmd "a" "b")'],
  },
  {
    name: "CRLF line endings",
    input: "FROM a\r\nRUN b \\\r\n c\r\n",
    dump: ['(from "a")', '(run "b  c")'],
  },
  {
    name: "several carriage returns before the newline",
    input: "FROM a\r\r\nRUN b\r\n",
    dump: ['(from "a")', '(run "b")'],
  },
  { name: "escape alone on the last line", input: "RUN b \\\n\\", dump: ['(run "b")'] },
  {
    name: "a comment ending in an escape does not continue",
    input: "# c \\\nFROM a\n",
    dump: ['(from "a")'],
  },
  { name: "an escape inside a word is kept", input: "RUN a\\b\n", dump: ['(run "a\\\\b")'] },
  {
    name: "many continuation lines",
    input: `RUN a \\\n${"  b \\\n".repeat(200)}  c\n`,
    check: (df) => assert.equal(df.instructions[0].endLine, 202),
  },
];

const COMMENTS_AND_KEYWORDS: ParseCase[] = [
  {
    name: "comments and empty lines are skipped",
    input: "# c\n\n  # d\n#\nFROM a\n",
    dump: ['(from "a")'],
    fields: { line: 5 },
  },
  {
    name: "a # after the keyword is not a comment",
    input: "RUN echo # not a comment\n",
    dump: ['(run "echo # not a comment")'],
  },
  {
    name: "lower-case keywords",
    input: "from a\nrun b\n",
    dump: ['(from "a")', '(run "b")'],
    fields: { keyword: "FROM" },
  },
  {
    name: "mixed-case keywords",
    input: "FrOm a\ncOpY x y\n",
    fields: { index: 1, keyword: "COPY", args: ["x", "y"] },
  },
  {
    name: "an unknown instruction is kept with its words",
    input: "FOO bar  baz\n",
    dump: ['(foo "")'],
    fields: { keyword: "FOO", args: ["bar", "baz"] },
  },
  { name: "a keyword without arguments", input: "RUN\n", dump: ["(run)"], fields: { args: [] } },
  {
    name: "tabs between keyword and arguments",
    input: "FROM\t\tubuntu\n",
    dump: ['(from "ubuntu")'],
  },
  { name: "trailing blanks are trimmed", input: "RUN a   \t\n", dump: ['(run "a")'] },
  {
    name: "form feed and vertical tab separate words",
    input: "EXPOSE 80\f81\v82\n",
    fields: { args: ["80", "81", "82"] },
  },
  {
    name: "a no-break space does not end the keyword",
    input: "RUN\u00a0x\n",
    fields: { keyword: "RUN\u00a0X" },
  },
  {
    name: "leading indentation of an instruction",
    input: "   \tFROM a\n",
    dump: ['(from "a")'],
    fields: { original: "FROM a" },
  },
  {
    name: "unicode arguments",
    input: "RUN echo héllo 日本 😀\n",
    dump: ['(run "echo héllo 日本 😀")'],
  },
  { name: "a NUL byte in an argument", input: "RUN a\0b\n", dump: ['(run "a\\x00b")'] },
  {
    name: "MAINTAINER is one string and warns",
    input: "MAINTAINER John Doe <j@d.io>\n",
    dump: ['(maintainer "John Doe <j@d.io>")'],
    check: (df) => assert.match(df.warnings[0].message, /MAINTAINER is deprecated/),
  },
  { name: "USER keeps one string", input: "USER a b\n", fields: { args: ["a b"] } },
  { name: "WORKDIR keeps spaces", input: "WORKDIR /my dir\n", fields: { args: ["/my dir"] } },
  {
    name: "STOPSIGNAL keeps one string",
    input: "STOPSIGNAL SIGKILL\n",
    fields: { args: ["SIGKILL"] },
  },
  {
    name: "FROM with AS",
    input: "FROM golang:1.22 AS build\n",
    fields: { args: ["golang:1.22", "AS", "build"] },
  },
  {
    name: "EXPOSE with protocols and ranges",
    input: "EXPOSE 80/udp 8000-8010 443/tcp\n",
    fields: { args: ["80/udp", "8000-8010", "443/tcp"] },
  },
  { name: "VOLUME shell form", input: "VOLUME /a /b\n", dump: ['(volume "/a" "/b")'] },
  {
    name: "HEALTHCHECK NONE",
    input: "HEALTHCHECK NONE\n",
    fields: { args: ["NONE"], json: false },
  },
  {
    name: "HEALTHCHECK CMD shell form",
    input: "HEALTHCHECK --interval=5s CMD curl -f http://x/ || exit 1\n",
    fields: { flags: ["--interval=5s"], args: ["CMD", "curl -f http://x/ || exit 1"] },
  },
  {
    name: "HEALTHCHECK CMD exec form",
    input: 'HEALTHCHECK CMD ["curl", "-f"]\n',
    fields: { args: ["CMD", "curl", "-f"], json: true },
  },
  {
    name: "original joins continuations",
    input: "RUN a \\\n  b\n",
    fields: { original: "RUN a   b" },
  },
];

const FLAGS: ParseCase[] = [
  {
    name: "-- ends the flags",
    input: "COPY --link -- --a b\n",
    dump: ['(copy ["--link"] "--a" "b")'],
  },
  { name: "-- alone", input: "COPY -- foo /tmp/\n", dump: ['(copy "foo" "/tmp/")'] },
  {
    name: "quoted flag value",
    input: 'COPY --chown="a b" x y\n',
    fields: { flags: ["--chown=a b"] },
  },
  {
    name: "single-quoted flag value",
    input: "COPY --chown='a b' x y\n",
    fields: { flags: ["--chown=a b"] },
  },
  {
    name: "backslash escapes in a flag",
    input: "RUN --mount=type=secret,id=a\\ b x\n",
    fields: { flags: ["--mount=type=secret,id=a b"], args: ["x"] },
  },
  { name: "a single dash is an argument", input: "RUN -x\n", dump: ['(run "-x")'] },
  {
    name: "flags before an exec form",
    input: 'RUN --network=none ["a"]\n',
    dump: ['(run ["--network=none"] "a")'],
    fields: { json: true },
  },
  {
    name: "several flags",
    input: "COPY --from=b --chown=1:1 --chmod=755 a /b\n",
    fields: { flags: ["--from=b", "--chown=1:1", "--chmod=755"] },
  },
  { name: "a boolean flag", input: "COPY --link a b\n", fields: { flags: ["--link"] } },
  {
    name: "flags and nothing else",
    input: "COPY --link\n",
    fields: { flags: ["--link"], args: [] },
  },
  {
    name: "a flag-like word after the arguments is an argument",
    input: "COPY a --from=b c\n",
    fields: { flags: [], args: ["a", "--from=b", "c"] },
  },
  {
    name: "flags of an ONBUILD trigger",
    input: "ONBUILD COPY --from=a b c\n",
    dump: ['(onbuild (copy ["--from=a"] "b" "c"))'],
  },
  {
    name: "FROM --platform",
    input: "FROM --platform=$BUILDPLATFORM alpine AS b\n",
    fields: { flags: ["--platform=$BUILDPLATFORM"], args: ["alpine", "AS", "b"] },
  },
  {
    name: "RUN mounts",
    input: "RUN --mount=type=cache,target=/root/.cache --mount=type=secret,id=t echo\n",
    fields: {
      flags: ["--mount=type=cache,target=/root/.cache", "--mount=type=secret,id=t"],
      args: ["echo"],
    },
  },
];

const FILE_LEVEL: ParseCase[] = [
  {
    name: "line numbers of every instruction",
    input: "# c\nFROM a\n\nRUN b \\\n  c\n# d\nCOPY \\\n\\\n x y\nCMD z\n",
    check: (df) => {
      const lines = df.instructions.map((i) => [i.keyword, i.line, i.endLine]);
      assert.deepEqual(lines, [["FROM", 2, 2], ["RUN", 4, 5], ["COPY", 7, 9], ["CMD", 10, 10]]);
    },
  },
  {
    name: "an empty file has no instructions",
    input: "",
    error: /^Dockerfile:1: file with no instructions$/,
  },
  { name: "only comments", input: "# a\n# b\n", error: /^Dockerfile:2: file with no instructions/ },
  { name: "only directives", input: "# syntax=x\n", error: /file with no instructions/ },
  { name: "only blanks", input: "  \n\t\n\n", error: /file with no instructions/ },
  { name: "a byte-order mark alone before FROM", input: "\uFEFFFROM a\n", dump: ['(from "a")'] },
  {
    name: "a line of 65535 bytes is fine",
    input: `RUN ${"a".repeat(65531)}\n`,
    check: (df) => assert.equal(df.instructions[0].args[0].length, 65531),
  },
  {
    name: "a line over 65535 bytes fails",
    input: `FROM a\nRUN ${"a".repeat(65532)}\n`,
    error: /^Dockerfile:2: line is longer than the maximum of 65535 bytes/,
  },
  {
    name: "multi-byte characters count as bytes",
    input: `FROM a\nRUN ${"é".repeat(33000)}\n`,
    error: /line is longer/,
  },
];

registerCases("parser directives", DIRECTIVES);
registerCases("parser continuations", CONTINUATIONS);
registerCases("parser comments and keywords", COMMENTS_AND_KEYWORDS);
registerCases("parser flags", FLAGS);
registerCases("parser file", FILE_LEVEL);
