/**
 * Table tests of the shell-word expansion module: BuildKit's own data (envVarTest, wordsTest,
 * TestProcessWithMatches — see testdata/shell/NOTICE) and our own unusual cases.
 * @module
 */
import assert from "node:assert/strict";
import {
  envFrom,
  type EnvLookup,
  ExpansionError,
  ShellLex,
  type ShellLexOptions,
} from "../../lib/dockerfile/shell_lex.ts";
import { KanikoError } from "../../lib/errors.ts";

const TESTDATA = new URL("./testdata/shell/", import.meta.url);

/** Expands `word`, returning the value or the sentinel "error" (with the error checked). */
function expand(lex: ShellLex, word: string, env: EnvLookup): string {
  try {
    return lex.processWord(word, env);
  } catch (e) {
    assert.ok(e instanceof ExpansionError, `expected an ExpansionError, got ${e}`);
    assert.ok(e instanceof KanikoError);
    assert.ok(!/[\r\n]/.test(e.message), `one line: ${JSON.stringify(e.message)}`);
    return "error";
  }
}

Deno.test("BuildKit envVarTest data (Linux rules)", async () => {
  const text = await Deno.readTextFile(new URL("envVarTest", TESTDATA));
  const lex = new ShellLex("\\");
  const envList = ["PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL="];
  const envs = [
    envFrom(envList),
    envFrom(new Map(envList.map((e) => e.split("=", 2) as [string, string]))),
  ];
  let count = 0;
  for (const [index, raw] of text.split("\n").entries()) {
    if (raw.startsWith("#") || raw.trim() === "") continue;
    const fields = raw.trim().split("|");
    assert.equal(fields.length, 3, `line ${index + 1}`);
    const [platform, source, expected] = fields.map((f) => f.trim());
    if (platform === "W") continue;
    for (const env of envs) {
      assert.equal(expand(lex, source, env), expected, `line ${index + 1}: ${source}`);
    }
    count++;
  }
  assert.ok(count >= 200, `only ${count} cases`);
});

Deno.test("BuildKit wordsTest data (processWords)", async () => {
  const text = await Deno.readTextFile(new URL("wordsTest", TESTDATA));
  const lex = new ShellLex("\\");
  const env: string[] = [];
  let count = 0;
  for (const [index, line] of text.split("\n").entries()) {
    if (line.startsWith("#") || line === "") continue;
    if (line.startsWith("ENV ")) {
      env.push(line.slice(3).replace(/^ +/, ""));
      continue;
    }
    const fields = line.split("|");
    assert.equal(fields.length, 2, `line ${index + 1}`);
    const source = fields[0].trim();
    const expected = fields[1].replace(/^ +/, "").split(",");
    let words: string[];
    try {
      words = lex.processWords(source, envFrom(env));
    } catch (e) {
      assert.ok(e instanceof ExpansionError);
      words = ["error"];
    }
    assert.deepEqual(words, expected, `line ${index + 1}: ${source}`);
    count++;
  }
  assert.ok(count >= 19);
});

interface MatchCase {
  input: string;
  envs: Record<string, string>;
  expected?: string;
  error?: true;
  matches?: string[];
  unmatched?: string[];
}

// Transcribed from BuildKit's lex_test.go TestProcessWithMatches (Apache-2.0, see NOTICE).
const BUILDKIT_MATCH_CASES: MatchCase[] = [
  { input: "x", envs: { DUMMY: "dummy" }, expected: "x" },
  { input: "x ${UNUSED}", envs: { DUMMY: "dummy" }, expected: "x ", unmatched: ["UNUSED"] },
  { input: "x ${FOO}", envs: { FOO: "y" }, expected: "x y", matches: ["FOO"] },
  {
    input: "${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}",
    envs: { FOO: "xxx", BAR: "" },
    expected: "xxx  ccc",
    matches: ["FOO", "BAR"],
    unmatched: ["BAZ"],
  },
  {
    input: "${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}",
    envs: { FOO: "xxx", BAR: "" },
    expected: "xxx bbb ccc",
    matches: ["FOO", "BAR"],
    unmatched: ["BAZ"],
  },
  { input: "${FOO:-}", envs: { FOO: "xxx", BAR: "" }, expected: "xxx", matches: ["FOO"] },
  { input: "${FOO:-}", envs: {}, expected: "", unmatched: ["FOO"] },
  {
    input: "${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}",
    envs: { FOO: "xxx", BAR: "" },
    expected: "aaa bbb ",
    matches: ["FOO", "BAR"],
    unmatched: ["BAZ"],
  },
  {
    input: "${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}",
    envs: { FOO: "xxx", BAR: "" },
    expected: "aaa  ",
    matches: ["FOO", "BAR"],
    unmatched: ["BAZ"],
  },
  { input: "${FOO?aaa}", envs: { FOO: "xxx", BAR: "" }, expected: "xxx", matches: ["FOO"] },
  { input: "${BAR?bbb}", envs: { FOO: "xxx", BAR: "" }, expected: "", matches: ["BAR"] },
  { input: "${BAZ?ccc}", envs: { FOO: "xxx", BAR: "" }, error: true },
  { input: "${FOO:?aaa}", envs: { FOO: "xxx", BAR: "" }, expected: "xxx", matches: ["FOO"] },
  { input: "${BAR:?bbb}", envs: { FOO: "xxx", BAR: "" }, error: true },
  { input: "${BAZ:?ccc}", envs: { FOO: "xxx", BAR: "" }, error: true },
  { input: "${BAZ:?}", envs: { FOO: "xxx", BAR: "" }, error: true },
  { input: "${FOO=aaa}", envs: { FOO: "xxx", BAR: "" }, error: true },
  { input: "${FOO=:aaa}", envs: { FOO: "xxx", BAR: "" }, error: true },
  { input: "${FOO=}", envs: {}, error: true },
  {
    input: "${FOO#()[]{\\}^$.\\*\\?|\\\\}",
    envs: { FOO: "()[]{}^$.*?|\\x" },
    expected: "x",
    matches: ["FOO"],
  },
  { input: "${FOO%%\\**}", envs: { FOO: "xx**" }, expected: "xx", matches: ["FOO"] },
  { input: "${FOO#*x*y}", envs: { FOO: "xxyy" }, expected: "y", matches: ["FOO"] },
  { input: "${FOO#*}", envs: { FOO: "xxyy" }, expected: "xxyy", matches: ["FOO"] },
  {
    input: "${FOO#$BAR}",
    envs: { FOO: "xxyy", BAR: "x" },
    expected: "xyy",
    matches: ["FOO", "BAR"],
  },
  {
    input: "${FOO#$BAR}",
    envs: { FOO: "xxyy", BAR: "" },
    expected: "xxyy",
    matches: ["FOO", "BAR"],
  },
  { input: "${FOO#}", envs: { FOO: "xxyy" }, expected: "xxyy", matches: ["FOO"] },
  { input: "${FOO##*x}", envs: { FOO: "xxyy" }, expected: "yy", matches: ["FOO"] },
  { input: "${FOO##}", envs: { FOO: "xxyy" }, expected: "xxyy", matches: ["FOO"] },
  { input: "${FOO#?\\?}", envs: { FOO: "???y" }, expected: "?y", matches: ["FOO"] },
  {
    input: "${ABC:-.}${FOO%x}${ABC:-.}",
    envs: { FOO: "xxyy" },
    expected: ".xxyy.",
    matches: ["FOO"],
    unmatched: ["ABC"],
  },
  { input: "${FOO%%\\**\\*}", envs: { FOO: "a***yy*" }, expected: "a", matches: ["FOO"] },
  { input: "${FOO%}", envs: { FOO: "xxyy" }, expected: "xxyy", matches: ["FOO"] },
  {
    input: "${FOO%%$BAR}",
    envs: { FOO: "xxyy", BAR: "" },
    expected: "xxyy",
    matches: ["FOO", "BAR"],
  },
  {
    input: "${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}",
    envs: { FOO: "/foo*/*/*.txt", NEEDLE: "\\*/" },
    expected: "/foo.*/*.txt - /foo..*.txt",
    matches: ["FOO", "NEEDLE"],
  },
  {
    input: "${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}",
    envs: { FOO: "/tmp/tmp/bar.txt", NEEDLE: "/tmp" },
    expected: "/tmp/bar.txt - /bar.txt",
    matches: ["FOO", "NEEDLE"],
  },
  {
    input: "${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}",
    envs: { FOO: "/a/foo/b/c.txt", NEEDLE: "/?/", REPLACEMENT: "/" },
    expected: "/foo/b/c.txt - /foo/c.txt",
    matches: ["FOO", "NEEDLE", "REPLACEMENT"],
  },
  {
    input: "${FOO/$NEEDLE/$REPLACEMENT}",
    envs: { FOO: "http://google.de", NEEDLE: "http://", REPLACEMENT: "https://" },
    expected: "https://google.de",
    matches: ["FOO", "NEEDLE", "REPLACEMENT"],
  },
  {
    input: "${FOO//\\//\\/}",
    envs: { FOO: "/tmp/foo.txt" },
    expected: "\\/tmp\\/foo.txt",
    matches: ["FOO"],
  },
  {
    input: "${FOO/$BAR/ww}",
    envs: { FOO: "xxyy", BAR: "" },
    expected: "wwxxyy",
    matches: ["FOO", "BAR"],
  },
  { input: "${FOO//ww}", envs: { FOO: "xxyy" }, error: true },
  { input: "${FOO//}", envs: { FOO: "xxyy" }, error: true },
  { input: "${FOO///}", envs: { FOO: "xxyy" }, expected: "xxyy", matches: ["FOO"] },
  { input: "${FOO///}", envs: {}, expected: "", unmatched: ["FOO"] },
  {
    input:
      "something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz",
    envs: { VERSION: "v1.2.3", TARGETOS: "linux", TARGETARCH: "arm", TARGETVARIANT: "v7" },
    expected: "something-v1.2.3.linux-arm-v7.tar.gz",
    matches: ["VERSION", "TARGETOS", "TARGETARCH", "TARGETVARIANT"],
  },
  {
    input:
      "something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz",
    envs: { VERSION: "v1.2.3", TARGETOS: "linux", TARGETARCH: "arm64", TARGETVARIANT: "" },
    expected: "something-v1.2.3.linux-arm64.tar.gz",
    matches: ["VERSION", "TARGETOS", "TARGETARCH", "TARGETVARIANT"],
  },
  {
    input:
      "something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz",
    envs: { VERSION: "v1.2.3", TARGETOS: "linux", TARGETARCH: "arm64" },
    expected: "something-v1.2.3.linux-arm64.tar.gz",
    matches: ["VERSION", "TARGETOS", "TARGETARCH"],
    // BuildKit's `${TARGETVARIANT:+-${TARGETVARIANT}}` processes the word before the lookup,
    // so the inner (unset) reference is recorded too.
    unmatched: ["TARGETVARIANT"],
  },
];

Deno.test("BuildKit TestProcessWithMatches cases: values and the variables read", () => {
  const lex = new ShellLex("\\");
  for (const c of BUILDKIT_MATCH_CASES) {
    const env = envFrom(c.envs);
    if (c.error) {
      assert.throws(() => lex.processWordWithUsage(c.input, env), ExpansionError, c.input);
      continue;
    }
    const { value, used } = lex.processWordWithUsage(c.input, env);
    assert.equal(value, c.expected, c.input);
    const expectedUsed = [...(c.matches ?? []), ...(c.unmatched ?? [])].sort();
    assert.deepEqual([...used].sort(), expectedUsed, c.input);
    for (const name of c.matches ?? []) assert.notEqual(env.get(name), undefined);
    for (const name of c.unmatched ?? []) assert.equal(env.get(name), undefined);
  }
});

Deno.test("BuildKit TestShellParserMandatoryEnvVars: ${v:?msg} and ${v?msg}", () => {
  const lex = new ShellLex("\\");
  const set = envFrom(["VAR=plain", "ARG=x"]);
  const empty = envFrom(["VAR=", "ARG=x"]);
  const unset = envFrom(["ARG=x"]);
  const noEmpty = "${VAR:?message here$ARG}", noUnset = "${VAR?message here$ARG}";
  assert.equal(lex.processWord(noEmpty, set), "plain");
  assert.throws(() => lex.processWord(noEmpty, empty), /message herex/);
  assert.throws(() => lex.processWord(noEmpty, unset), /message herex/);
  assert.equal(lex.processWord(noUnset, set), "plain");
  assert.equal(lex.processWord(noUnset, empty), "");
  assert.throws(() => lex.processWord(noUnset, unset), /message herex/);
});

type Row = [input: string, expected: string];

const ENV = envFrom({
  A: "abc",
  EMPTY: "",
  SP: "a  b c",
  PATHV: "/usr/local/bin",
  FILE: "archive.tar.gz",
  NL: "a\nb",
  GLOB: "a*b?c[d]",
  "한국어": "korean",
  "é": "e-acute",
  UNI: "😀 ünï",
});

/** Our own unusual cases, with `\` as the escape character. */
const OWN_CASES: Row[] = [
  // escapes, including at the end of the word
  ["abc\\", "abc"],
  ["\\", ""],
  ["\\\\", "\\"],
  ['"abc\\', "error"],
  ["'abc\\'", "abc\\"],
  ["a\\ b", "a b"],
  ["a\\\nb", "a\nb"],
  ['"a\\\nb"', "a\\\nb"], // BuildKit: no escaped newline inside double quotes
  ['"\\a\\b"', "\\a\\b"],
  ['"\\\\"', "\\"],
  ['"\\""', '"'],
  ['"\\$A"', "$A"],
  ['"\\`"', "\\`"],
  ["\\$A", "$A"],
  ["\\${A}", "${A}"],
  ["\\'", "'"],
  ['\\"', '"'],
  // empty and unset
  ["${EMPTY-x}", ""],
  ["${EMPTY:-x}", "x"],
  ["${EMPTY+x}", "x"],
  ["${EMPTY:+x}", ""],
  ["${EMPTY?x}", ""],
  ["${EMPTY:?x}", "error"],
  ["${NOPE-x}", "x"],
  ["${NOPE+x}", ""],
  ["${NOPE:-}", ""],
  ["${NOPE-}", ""],
  ["${A:-}", "abc"],
  ["${A:+}", ""],
  ["$NOPE", ""],
  ["${NOPE}", ""],
  // `$` followed by something other than a name is kept
  ["$", "$"],
  ["a$", "a$"],
  ['"$"', "$"],
  ["$/x", "$/x"],
  ["$%", "$%"],
  ['$"A"', "$A"],
  ["$'A'", "$A"],
  ["$ A", "$ A"],
  ["$=", "$="],
  // names: letters (unicode too), digits, `_`; digits first means a positional parameter
  ["$A_", ""],
  ["${A}_", "abc_"],
  ["$A.b", "abc.b"],
  ["$한국어", "korean"],
  ["${한국어}!", "korean!"],
  ["$é", "e-acute"],
  ["$UNI", "😀 ünï"],
  ["${UNI#?}", " ünï"],
  ["${UNI%ï}", "😀 ün"],
  ["$1A", "A"],
  ["$12", ""],
  ["${1A}", "error"],
  // nested expansions and quoting inside `${…}`
  ["${NOPE:-${A}}", "abc"],
  ["${NOPE:-${NOPE2:-${A:+deep}}}", "deep"],
  ["${NOPE:-'a}b'}", "a}b"],
  ['${NOPE:-"x y"}', "x y"],
  ["${NOPE:-a\\}b}", "a}b"],
  ["${NOPE:-$}", "$"],
  ["\"${NOPE:-'q'}\"", "q"], // BuildKit removes the quotes; POSIX sh would keep them
  ['"${NOPE:-a b}"', "a b"],
  ["${A:+${A}${A}}", "abcabc"],
  ["x${A}y${A}z", "xabcyabcz"],
  // patterns
  ["${FILE%.*}", "archive.tar"],
  ["${FILE%%.*}", "archive"],
  ["${FILE#*.}", "tar.gz"],
  ["${FILE##*.}", "gz"],
  ["${FILE%.tar.gz}", "archive"],
  ["${FILE#archive}", ".tar.gz"],
  ["${FILE#nomatch}", "archive.tar.gz"],
  ["${FILE%???}", "archive.tar"],
  ["${PATHV##*/}", "bin"],
  ["${PATHV%/*}", "/usr/local"],
  ["${PATHV/\\/usr/opt}", "opt/local/bin"],
  ["${PATHV//\\//:}", ":usr:local:bin"],
  ["${PATHV//l*l/L}", "/usr/L/bin"],
  ["${PATHV/o/0}", "/usr/l0cal/bin"],
  ["${PATHV//o/0}", "/usr/l0cal/bin"],
  ["${FILE//a/}", "rchive.tr.gz"],
  ["${FILE/#a/X}", "archive.tar.gz"], // no `#` anchor in BuildKit: `#a` is literal
  ["${GLOB#a\\*b\\?c[d]}", ""], // brackets are literal in BuildKit patterns
  ["${GLOB#a?b}", "?c[d]"],
  ["${GLOB%[d]}", "a*b?c"],
  ["${GLOB#'a*'}", "*b?c[d]"], // quotes are removed: `a*`, shortest match "a"
  ["${GLOB##'a*'}", ""],
  ["${GLOB#*\\?}", "c[d]"],
  ["${NL#*b}", "a\nb"], // `*` never matches a newline (Go's `.`)
  ["${NL#a?b}", "a\nb"],
  ["${NL#a\nb}", ""],
  ["${NL%\nb}", "a"],
  ["${A#\\a}", "error"], // escaping an ordinary character in a pattern
  ["${A:#a}", "error"],
  ["${A:%a}", "error"],
  ["${A/a}", "error"],
  ["${A/a/b", "error"],
  ["${A//*/[$0]}", "[]"], // `$0` is a special parameter, expanded (empty) by the lexer
  ["${A//*/['$0']}", "[abc]"], // a literal `$0` is a Go template reference to the match
  ["${A/*/['$0']}", "[$0]"], // single replacement: BuildKit inserts it verbatim
  ["${A//b*/X}", "aX"],
  ["${A//*/X}", "X"], // Go skips the empty match right after a match
  ["${A//x*/-}", "abc"],
  ["${NOPE//a/b}", ""],
  // errors
  ["${", "error"],
  ["${A", "error"],
  ["${A:", "error"],
  ["${A:-", "error"],
  ["${A:}", "error"],
  ["${A:=x}", "error"],
  ["${A=x}", "error"],
  ["${A^^}", "error"],
  ["${#A}", "error"],
  ["${!A}", "error"],
  ["${{A}}", "error"],
  ["${A:-${}", "error"],
  ["'", "error"],
  ['"', "error"],
  ["${NOPE:-'}", "error"],
  // positional and special parameters are never set
  ["$0$1$9$@$*$#$?$-$$$!", ""],
  ["${#:-d}${?:-d}", "dd"],
];

Deno.test("own table: escapes, empty vs unset, names, nesting, patterns, errors", () => {
  const lex = new ShellLex("\\");
  for (const [input, expected] of OWN_CASES) {
    assert.equal(expand(lex, input, ENV), expected, JSON.stringify(input));
  }
  assert.ok(OWN_CASES.length >= 100, `only ${OWN_CASES.length} own cases`);
});

/** Cases with `` ` `` as the escape character (`# escape=``). */
const BACKTICK_CASES: Row[] = [
  ["C:\\Windows\\System32", "C:\\Windows\\System32"],
  ["a`$A", "a$A"],
  ["a``b", "a`b"],
  ["a` b", "a b"],
  ["abc`", "abc"],
  ['"a`"b"', 'a"b'],
  ['"`$A"', "$A"],
  ['"``"', "`"],
  ['"`x"', "`x"],
  ['"\\$A"', "\\abc"],
  ["\\$A", "\\abc"],
  ["${NOPE:-`}}", "}"],
  ["${A#`a}", "abc"], // the pattern keeps the raw "`", a literal for the pattern matcher
  ["${A#\\a}", "error"], // while `\` still escapes inside patterns: `\a` is invalid
  ["${FILE%`.gz}", "archive.tar.gz"],
  ["${PATHV//`//-}", "/usr/local/bin"], // pattern "`/": no way to put a bare `/` in it
  ["${PATHV//\\//-}", "error"], // pattern `\` alone: invalid escape
];

Deno.test("backtick escape character (# escape=`)", () => {
  const lex = new ShellLex("`");
  for (const [input, expected] of BACKTICK_CASES) {
    assert.equal(expand(lex, input, ENV), expected, JSON.stringify(input));
  }
});

/** processWords cases: [input, expected words] with ENV. */
const WORDS_CASES: [string, string[]][] = [
  ["", []],
  ["   ", []],
  ["a b\tc\nd", ["a", "b", "c", "d"]],
  ["'' a", ["a"]],
  ['"" ""', []],
  ["'a b' c", ["a b", "c"]],
  ["a\\ b c", ["a b", "c"]],
  ["$SP", ["a", "b", "c"]],
  ['"$SP"', ["a  b c"]],
  ["x$SP", ["xa", "b", "c"]],
  ["$EMPTY a", ["a"]],
  ['${NOPE:-"a b"}', ["a", "b"]], // BuildKit splits the expansion result, quotes or not
  ["a${NOPE:-b}c d", ["abc", "d"]],
  ["src/${FILE} /dst/", ["src/archive.tar.gz", "/dst/"]],
  ["a\u00a0b", ["a", "b"]], // Go's unicode.IsSpace
  ["a\u3000b", ["a", "b"]],
];

Deno.test("processWords: splitting on unquoted whitespace", () => {
  const lex = new ShellLex("\\");
  for (const [input, expected] of WORDS_CASES) {
    assert.deepEqual(lex.processWords(input, ENV), expected, JSON.stringify(input));
  }
});

/** Option cases: [options, input, expected]. */
const OPTION_CASES: [ShellLexOptions, string, string][] = [
  [{ rawQuotes: true }, `'a'"b"c`, `'a'"b"c`],
  [{ rawQuotes: true }, `"$A '$A'"`, `"abc 'abc'"`],
  [{ rawQuotes: true }, `'$A'`, `'$A'`],
  [{ rawEscapes: true }, "a\\ b\\$A", "a\\ b\\$A"],
  [{ rawEscapes: true }, '"\\"x"', '\\"x'],
  [{ rawEscapes: true }, '"\\a"', "\\\\a"], // BuildKit writes the escape twice here
  [{ rawEscapes: true }, "abc\\", "abc\\"],
  [{ skipUnsetEnv: true }, "$NOPE ${NOPE} $A", "$NOPE ${NOPE} abc"],
  [{ skipUnsetEnv: true }, "${NOPE:-x} ${NOPE-x} ${EMPTY:-x}", "${NOPE:-x} ${NOPE-x} x"],
  [{ skipUnsetEnv: true }, "${NOPE#a} ${NOPE//a/b} ${NOPE:?m}", "${NOPE#a} ${NOPE/a/b} ${NOPE:?m}"],
  [{ skipUnsetEnv: true }, "${NOPE:=x}", "${NOPE:=x}"], // BuildKit keeps it instead of failing
  [{ skipUnsetEnv: true, rawQuotes: true }, `"\${NOPE}" '$A'`, `"\${NOPE}" '$A'`],
];

Deno.test("options: rawQuotes, rawEscapes, skipUnsetEnv", () => {
  for (const [options, input, expected] of OPTION_CASES) {
    const lex = new ShellLex("\\", options);
    assert.equal(lex.processWord(input, ENV), expected, `${JSON.stringify(options)} ${input}`);
  }
});

Deno.test("processWordWithUsage reports set and unset names, in defaults and patterns too", () => {
  const lex = new ShellLex("\\");
  const { value, used } = lex.processWordWithUsage(
    "${A:-$B} ${C#$D} '$E' \\$F \"$G\" ${H/$I/$J}",
    envFrom({ A: "1", C: "cc", D: "c" }),
  );
  assert.equal(value, "1 c $E $F  ");
  assert.deepEqual([...used].sort(), ["A", "B", "C", "D", "G", "H", "I", "J"]);
});

Deno.test("envFrom: Map, record and K=V list (last wins, bare K is empty)", () => {
  const list = envFrom(["A=1", "B=x=y", "A=2", "C", "=v"]);
  assert.equal(list.get("A"), "2");
  assert.equal(list.get("B"), "x=y");
  assert.equal(list.get("C"), "");
  assert.equal(list.get(""), "v");
  assert.equal(list.get("D"), undefined);
  const record = envFrom({ A: "1" });
  assert.equal(record.get("A"), "1");
  assert.equal(record.get("toString"), undefined);
  assert.equal(record.get("__proto__"), undefined);
  assert.equal(envFrom(new Map([["K", ""]])).get("K"), "");
});

Deno.test("errors: one line, BuildKit's wording, word included", () => {
  const lex = new ShellLex("\\");
  const cases: [string, string][] = [
    ["${A", `failed to process "\${A": syntax error: missing '}'`],
    ["${}", `failed to process "\${}": syntax error: bad substitution`],
    ["${A:=x}", `failed to process "\${A:=x}": unsupported modifier (:=) in substitution`],
    ["${A/x}", `failed to process "\${A/x}": syntax error: missing '/' in \${}`],
    [
      "'x",
      `failed to process "'x": unexpected end of statement while looking for matching single-quote`,
    ],
    [
      '"x',
      `failed to process "\\"x": unexpected end of statement while looking for matching double-quote`,
    ],
    ["${NOPE?}", `failed to process "\${NOPE?}": NOPE: is not allowed to be unset`],
    ["${EMPTY:?}", `failed to process "\${EMPTY:?}": EMPTY: is not allowed to be empty`],
    [
      "${NOPE:?set it\nplease}",
      `failed to process "\${NOPE:?set it\\nplease}": NOPE: set it please`,
    ],
    [
      "${A#\\q}",
      `failed to process "\${A#\\\\q}": invalid pattern (\\q) in substitution: invalid escape '\\q'`,
    ],
  ];
  for (const [input, message] of cases) {
    assert.throws(() => lex.processWord(input, ENV), (e) => {
      assert.ok(e instanceof ExpansionError);
      assert.equal(e.message, message);
      assert.equal(e.word, input);
      return true;
    });
  }
});

Deno.test("robustness: deep nesting, long words and slow patterns stay fast and clean", () => {
  const lex = new ShellLex("\\");
  const deep = "${X:-".repeat(100) + "v" + "}".repeat(100);
  assert.equal(lex.processWord(deep, ENV), "v");
  const nested = '${X:-"'.repeat(1000) + "v" + '"}'.repeat(1000);
  assert.equal(lex.processWord(nested, ENV), "v");
  const tooDeep = '${X:-"'.repeat(50_000);
  assert.throws(() => lex.processWord(tooDeep, ENV), ExpansionError);
  const long = "a".repeat(1 << 20);
  assert.equal(lex.processWord(long + "$A", ENV).length, (1 << 20) + 3);
  const value = "a".repeat(20_000);
  const started = performance.now();
  const env = envFrom({ V: value });
  assert.equal(lex.processWord("${V#*a*a*a*a*a*a*a*a*a*a*b}", env), value);
  assert.equal(lex.processWord("${V%%a*a*a*a*a*a*a*a*a*a*b}", env), value);
  assert.equal(lex.processWord("${V//a*a*a*a*b/x}", env), value);
  assert.ok(performance.now() - started < 5_000, "patterns took too long");
});

Deno.test("random input never throws anything but ExpansionError", () => {
  const lex = new ShellLex("\\");
  const alphabet = [
    "$",
    "{",
    "}",
    ":",
    "-",
    "+",
    "?",
    "#",
    "%",
    "/",
    "'",
    '"',
    "\\",
    "a",
    " ",
    "*",
  ];
  let seed = 12345;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let i = 0; i < 5000; i++) {
    let word = "";
    const len = rand(20);
    for (let j = 0; j < len; j++) word += alphabet[rand(alphabet.length)];
    try {
      lex.processWords(word, ENV);
      lex.processWord(word, ENV);
    } catch (e) {
      assert.ok(e instanceof ExpansionError, `${JSON.stringify(word)}: ${e}`);
      assert.ok(!e.message.includes("\n"));
    }
  }
});
