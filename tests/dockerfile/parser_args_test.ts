/**
 * Parser table tests for arguments: the exec (JSON) form and its fallback to the shell form,
 * ENV/LABEL/ARG keys and values (quotes removed in `args`, kept in `rawArgs`), and ONBUILD.
 */
import assert from "node:assert/strict";
import { parseWords, unquote } from "../../lib/dockerfile/words.ts";
import { type ParseCase, registerCases } from "./_parser_helpers.ts";

const JSON_FORM: ParseCase[] = [
  { name: "exec form", input: 'CMD ["a", "b"]\n', fields: { args: ["a", "b"], json: true } },
  { name: "\\u escapes", input: 'CMD ["\\u0041\\u00e9\\u65e5"]\n', fields: { args: ["Aé日"] } },
  {
    name: "unicode characters",
    input: 'CMD ["héllo", "日本", "😀"]\n',
    fields: { args: ["héllo", "日本", "😀"] },
  },
  { name: "a surrogate pair escape", input: 'CMD ["\\ud83d\\ude00"]\n', fields: { args: ["😀"] } },
  {
    name: "an unpaired surrogate becomes U+FFFD",
    input: 'CMD ["a\\ud800b"]\n',
    fields: { args: ["a\ufffdb"] },
  },
  {
    name: "all JSON escapes",
    input: 'CMD ["\\" \\\\ \\/ \\b \\f \\n \\r \\t"]\n',
    fields: { args: ['" \\ / \b \f \n \r \t'] },
  },
  {
    name: "single quotes are not JSON",
    input: "CMD ['a']\n",
    fields: { args: ["['a']"], json: false },
  },
  {
    name: "a trailing comma is not JSON",
    input: 'CMD ["a",]\n',
    fields: { args: ['["a",]'], json: false },
  },
  {
    name: "text after the array is not JSON",
    input: 'CMD ["a"] b\n',
    fields: { args: ['["a"] b'], json: false },
  },
  {
    name: "an object is the shell form",
    input: 'CMD {"a": 1}\n',
    fields: { args: ['{"a": 1}'], json: false },
  },
  { name: "an empty array", input: "CMD []\n", dump: ["(cmd)"], fields: { args: [], json: true } },
  { name: "an array of an empty string", input: 'CMD [""]\n', dump: ['(cmd "")'] },
  {
    name: "a nested array fails",
    input: 'CMD ["a", ["b"]]\n',
    error:
      /^Dockerfile:1: CMD: when using JSON array syntax, arrays must be comprised of strings only$/,
  },
  { name: "a number fails", input: "RUN [1]\n", error: /RUN: when using JSON array syntax/ },
  {
    name: "null fails",
    input: 'ENTRYPOINT ["a", null]\n',
    error: /ENTRYPOINT: when using JSON array syntax/,
  },
  {
    name: "ENTRYPOINT exec form",
    input: 'ENTRYPOINT ["/bin/app", "--flag"]\n',
    fields: { args: ["/bin/app", "--flag"], json: true },
  },
  {
    name: "SHELL exec form",
    input: 'SHELL ["powershell", "-command"]\n',
    fields: { args: ["powershell", "-command"], json: true },
  },
  {
    name: "SHELL shell form",
    input: "SHELL /bin/sh -c\n",
    fields: { args: ["/bin/sh -c"], json: false },
  },
  {
    name: "ADD JSON with spaces in names",
    input: 'ADD ["a file", "/the dir/"]\n',
    fields: { args: ["a file", "/the dir/"], json: true },
  },
  {
    name: "COPY invalid JSON falls back to words",
    input: 'COPY ["a", b]\n',
    fields: { args: ['["a",', "b]"], json: false },
  },
  { name: "VOLUME JSON", input: 'VOLUME ["/a", "/b c"]\n', dump: ['(volume "/a" "/b c")'] },
  {
    name: "blanks inside the brackets",
    input: 'CMD\t[\t"a" ,\t"b"\t]\t\n',
    fields: { args: ["a", "b"], json: true },
  },
  {
    name: "JSON after flags",
    input: 'RUN --network=host [ "a" ]\n',
    fields: { flags: ["--network=host"], args: ["a"], json: true },
  },
  {
    name: "JSON nested deeper than Go accepts is the shell form",
    input: `CMD [${"[".repeat(10001)}${"]".repeat(10001)}]\n`,
    fields: { json: false },
  },
  {
    name: "the shell form keeps inner quotes",
    input: "RUN echo \"a  b\" 'c'\n",
    fields: { args: ["echo \"a  b\" 'c'"] },
  },
  {
    name: "a control character escape",
    input: 'CMD ["\\u0000\\u001f"]\n',
    dump: ['(cmd "\\x00\\x1f")'],
  },
];

const KEY_VALUES: ParseCase[] = [
  {
    name: "ENV k=v",
    input: "ENV k=v\n",
    fields: { args: ["k", "v"], rawArgs: ["k", "v"], legacyKeyValue: false },
  },
  {
    name: "ENV double-quoted value",
    input: 'ENV k="v w"\n',
    fields: { args: ["k", "v w"], rawArgs: ["k", '"v w"'] },
  },
  {
    name: "ENV single-quoted value keeps $",
    input: "ENV k='$HOME'\n",
    fields: { args: ["k", "$HOME"], rawArgs: ["k", "'$HOME'"] },
  },
  {
    name: "ENV escaped space",
    input: "ENV k=a\\ b\n",
    fields: { args: ["k", "a b"], rawArgs: ["k", "a\\ b"] },
  },
  {
    name: "ENV legacy form",
    input: "ENV k v w\n",
    fields: { args: ["k", "v w"], legacyKeyValue: true },
    check: (df) => assert.match(df.warnings[0].message, /legacy "ENV key value" form/),
  },
  {
    name: "ENV legacy form with quotes",
    input: 'ENV k "v w"\n',
    fields: { args: ["k", "v w"], rawArgs: ["k", '"v w"'] },
  },
  {
    name: "ENV several pairs",
    input: "ENV a=1 b=2 c=3\n",
    fields: { args: ["a", "1", "b", "2", "c", "3"] },
  },
  { name: "ENV escaped double quote", input: 'ENV k="a\\"b"\n', fields: { args: ["k", 'a"b'] } },
  {
    name: "ENV with the backtick escape",
    input: "# escape=`\nENV k=a` b p=c:\\d\n",
    fields: { args: ["k", "a b", "p", "c:\\d"] },
  },
  {
    name: "ENV without a value fails",
    input: "FROM a\nENV PATH\n",
    error: /^Dockerfile:2: ENV: must have two arguments/,
  },
  { name: "ENV mixing forms fails", input: "ENV a=b c\n", error: /ENV: can't find = in "c"/ },
  { name: "ENV empty value", input: "ENV k=\n", fields: { args: ["k", ""] } },
  { name: "ENV value with =", input: "ENV k=a=b\n", fields: { args: ["k", "a=b"] } },
  {
    name: "ENV splits at unicode spaces",
    input: "ENV a=b\u00a0c=d\n",
    fields: { args: ["a", "b", "c", "d"] },
  },
  {
    name: "ENV pairs over continuation lines",
    input: "ENV a=1 \\\n    b=2\n",
    fields: { args: ["a", "1", "b", "2"], endLine: 2 },
  },
  { name: "ENV alone has no arguments", input: "ENV\n", fields: { args: [] } },
  {
    name: "LABEL quoted key and value",
    input: 'LABEL "com.example.v"="1 0" other=x\n',
    fields: {
      args: ["com.example.v", "1 0", "other", "x"],
      rawArgs: ['"com.example.v"', '"1 0"', "other", "x"],
    },
  },
  {
    name: "LABEL legacy form",
    input: "LABEL maintainer Jo <j@x>\n",
    dump: ['(label "maintainer" "Jo <j@x>")'],
  },
  {
    name: "LABEL without a value fails",
    input: "LABEL k\n",
    error: /LABEL: must have two arguments/,
  },
  {
    name: "ARG without a value",
    input: "ARG K\n",
    fields: { args: ["K", ""], rawArgs: ["K"] },
    dump: ['(arg "K")'],
  },
  {
    name: "ARG with an empty value",
    input: "ARG K=\n",
    fields: { args: ["K", ""], rawArgs: ["K="] },
  },
  {
    name: "ARG several",
    input: "ARG K=v W\n",
    fields: { args: ["K", "v", "W", ""], rawArgs: ["K=v", "W"] },
    dump: ['(arg "K=v" "W")'],
  },
  {
    name: "ARG quoted value",
    input: 'ARG K="a b"\n',
    fields: { args: ["K", "a b"], rawArgs: ['K="a b"'] },
  },
  {
    name: "ARG value with variables",
    input: "ARG V=${BASE:-x}/y\n",
    fields: { args: ["V", "${BASE:-x}/y"] },
  },
];

const ONBUILD: ParseCase[] = [
  {
    name: "ONBUILD RUN",
    input: "ONBUILD RUN echo hi\n",
    dump: ['(onbuild (run "echo hi"))'],
    fields: { args: ["RUN", "echo hi"] },
    check: (df) => {
      const nested = df.instructions[0].onbuild;
      assert.deepEqual([nested?.keyword, nested?.args, nested?.line], ["RUN", ["echo hi"], 1]);
    },
  },
  { name: "ONBUILD exec form", input: 'ONBUILD CMD ["a"]\n', dump: ['(onbuild (cmd "a"))'] },
  {
    name: "ONBUILD alone",
    input: "ONBUILD\n",
    dump: ["(onbuild)"],
    fields: { onbuild: null, args: [] },
  },
  {
    name: "ONBUILD ONBUILD parses",
    input: "ONBUILD ONBUILD RUN x\n",
    dump: ['(onbuild (onbuild (run "x")))'],
  },
  {
    name: "onbuild in lower case",
    input: "onbuild add . /app\n",
    dump: ['(onbuild (add "." "/app"))'],
  },
  { name: "ONBUILD ENV", input: "ONBUILD ENV a=b\n", dump: ['(onbuild (env "a" "b"))'] },
  {
    name: "ONBUILD nested line numbers",
    input: "FROM a\nONBUILD RUN a \\\n b\n",
    fields: { index: 1, line: 2, endLine: 3 },
    check: (df) => assert.equal(df.instructions[1].onbuild?.endLine, 3),
  },
  {
    name: "ONBUILD with an ENV syntax error",
    input: "ONBUILD ENV x\n",
    error: /^Dockerfile:1: ENV: must have two arguments/,
  },
];

registerCases("parser JSON form", JSON_FORM);
registerCases("parser ENV/LABEL/ARG", KEY_VALUES);
registerCases("parser ONBUILD", ONBUILD);

Deno.test("parseWords: BuildKit's table", () => {
  const cases: [string, string[]][] = [
    ["foo", ["foo"]],
    ["foo bar", ["foo", "bar"]],
    ["foo\\ bar", ["foo\\ bar"]],
    ["foo=bar", ["foo=bar"]],
    ["foo bar 'abc xyz'", ["foo", "bar", "'abc xyz'"]],
    ['foo bar "abc xyz"', ["foo", "bar", '"abc xyz"']],
    ["àöû", ["àöû"]],
    ['föo bàr "âbc xÿz"', ["föo", "bàr", '"âbc xÿz"']],
    ["a='' b", ["a=''", "b"]],
    ["''", ["''"]],
    ["a\\", ["a"]],
    ['"a\\', ['"a']],
  ];
  for (const [input, words] of cases) assert.deepEqual(parseWords(input, "\\"), words, input);
  assert.deepEqual(parseWords("a` b c", "`"), ["a` b", "c"]);
});

Deno.test("unquote: BuildKit's quote removal without expansion", () => {
  const cases: [string, string][] = [
    ['"a b"', "a b"],
    ["'a\\b'", "a\\b"],
    ['"a\\"b"', 'a"b'],
    ['"a\\b"', "a\\b"],
    ['"\\$x"', "$x"],
    ["a\\ b", "a b"],
    ["$HOME", "$HOME"],
    ["x\\", "x"],
    ["a\"b\"'c'", "abc"],
  ];
  for (const [input, value] of cases) assert.equal(unquote(input, "\\").value, value, input);
  assert.deepEqual(unquote("'a", "\\"), { value: "a", unterminated: "single" });
  assert.deepEqual(unquote('"a', "\\"), { value: "a", unterminated: "double" });
  assert.equal(unquote("a`'b", "`").value, "a'b");
});
