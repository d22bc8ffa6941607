/**
 * `.dockerignore` semantics: BuildKit's ReadAll, moby/patternmatcher's test tables
 * (TestMatches, the multi-pattern cases, TestMatch through the matcher), and every example of
 * Docker's documentation (build/concepts/context.md).
 */
import assert from "node:assert/strict";
import { IgnoreMatcher, readIgnoreLines } from "../../lib/context/dockerignore.ts";
import { KanikoError } from "../../lib/errors.ts";
import { BAD, GO_MATCH_TESTS } from "./_go_match_tests.ts";

/** Excluded according to the parent-results walk (BuildKit's MatchesUsingParentResults). */
function excludedByWalk(m: IgnoreMatcher, path: string): boolean {
  const parts = path.split("/").filter((p) => p !== "");
  let info;
  let excluded = false;
  for (let i = 0; i < parts.length; i++) {
    const r = m.matchesWithParent(parts.slice(0, i + 1).join("/"), info);
    info = r.info;
    excluded = r.excluded;
  }
  return excluded;
}

function expectExcluded(patterns: string[], yes: string[], no: string[]) {
  const m = new IgnoreMatcher(patterns);
  for (const p of yes) {
    assert.equal(m.matches(p), true, `${JSON.stringify(patterns)} should exclude ${p}`);
    assert.equal(excludedByWalk(m, p), true, `walk: ${JSON.stringify(patterns)} excludes ${p}`);
  }
  for (const p of no) {
    assert.equal(m.matches(p), false, `${JSON.stringify(patterns)} should keep ${p}`);
    assert.equal(excludedByWalk(m, p), false, `walk: ${JSON.stringify(patterns)} keeps ${p}`);
  }
}

Deno.test("readIgnoreLines: BuildKit's ReadAll (comments, trimming, cleaning, leading /)", () => {
  const content = "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n" +
    "! /inverted/abs/path\n!\n! ";
  const { patterns, lines } = readIgnoreLines(content);
  assert.deepEqual(patterns, [
    "test1",
    "test2",
    "a/file/here",
    "lastfile",
    "!inverted/abs/path",
    "!",
    "!",
  ]);
  assert.deepEqual(lines, [1, 2, 3, 5, 7, 8, 9]);
});

Deno.test("readIgnoreLines: BOM, CRLF, column-1 comments only, cleaning", () => {
  const text = "\uFEFFfirst\r\n  # not a comment\r\n#comment\n./a/../b/\n  spaced  \n/\n.\n" +
    "dir//x\n\t\n!  ./keep/me/ \n";
  const { patterns } = readIgnoreLines(text);
  assert.deepEqual(patterns, [
    "first",
    "# not a comment",
    "b",
    "spaced",
    "/",
    ".",
    "dir/x",
    "!keep/me",
  ]);
});

Deno.test("readIgnoreLines: a line of 64 KiB fails like Go's scanner", () => {
  assert.throws(
    () => readIgnoreLines("ok\n" + "x".repeat(70000) + "\n", "ctx/.dockerignore"),
    (e) =>
      e instanceof KanikoError &&
      /ctx\/\.dockerignore:2: line is longer than 64 KiB/.test(e.message),
  );
});

// moby/patternmatcher TestMatches: [pattern, text, matches (or its parent)].
const PM_TESTS: [string, string, boolean][] = [
  ["**", "file", true],
  ["**", "file/", true],
  ["**/", "file", true],
  ["**/", "file/", true],
  ["**", "dir/file", true],
  ["**/", "dir/file", true],
  ["**", "dir/file/", true],
  ["**/", "dir/file/", true],
  ["**/**", "dir/file", true],
  ["**/**", "dir/file/", true],
  ["dir/**", "dir/file", true],
  ["dir/**", "dir/file/", true],
  ["dir/**", "dir/dir2/file", true],
  ["dir/**", "dir/dir2/file/", true],
  ["**/dir", "dir", true],
  ["**/dir", "dir/file", true],
  ["**/dir2/*", "dir/dir2/file", true],
  ["**/dir2/*", "dir/dir2/file/", true],
  ["**/dir2/**", "dir/dir2/dir3/file", true],
  ["**/dir2/**", "dir/dir2/dir3/file/", true],
  ["**file", "file", true],
  ["**file", "dir/file", true],
  ["**/file", "dir/file", true],
  ["**file", "dir/dir/file", true],
  ["**/file", "dir/dir/file", true],
  ["**/file*", "dir/dir/file", true],
  ["**/file*", "dir/dir/file.txt", true],
  ["**/file*txt", "dir/dir/file.txt", true],
  ["**/file*.txt", "dir/dir/file.txt", true],
  ["**/file*.txt*", "dir/dir/file.txt", true],
  ["**/**/*.txt", "dir/dir/file.txt", true],
  ["**/**/*.txt2", "dir/dir/file.txt", false],
  ["**/*.txt", "file.txt", true],
  ["**/**/*.txt", "file.txt", true],
  ["a**/*.txt", "a/file.txt", true],
  ["a**/*.txt", "a/dir/file.txt", true],
  ["a**/*.txt", "a/dir/dir/file.txt", true],
  ["a/*.txt", "a/dir/file.txt", false],
  ["a/*.txt", "a/file.txt", true],
  ["a/*.txt**", "a/file.txt", true],
  ["a[b-d]e", "ae", false],
  ["a[b-d]e", "ace", true],
  ["a[b-d]e", "aae", false],
  ["a[^b-d]e", "aze", true],
  [".*", ".foo", true],
  [".*", "foo", false],
  ["abc.def", "abcdef", false],
  ["abc.def", "abc.def", true],
  ["abc.def", "abcZdef", false],
  ["abc?def", "abcZdef", true],
  ["abc?def", "abcdef", false],
  ["**/foo/bar", "foo/bar", true],
  ["**/foo/bar", "dir/foo/bar", true],
  ["**/foo/bar", "dir/dir2/foo/bar", true],
  ["abc/**", "abc", false],
  ["abc/**", "abc/def", true],
  ["abc/**", "abc/def/ghi", true],
  ["**/.foo", ".foo", true],
  ["**/.foo", "bar.foo", false],
  ["a(b)c/def", "a(b)c/def", true],
  ["a(b)c/def", "a(b)c/xyz", false],
  ["a.|)$(}+{bc", "a.|)$(}+{bc", true],
  [
    "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
    "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
    true,
  ],
  ["dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", true],
  ["a\\\\", "a\\", true],
  ["a\\*b", "a*b", true],
];

Deno.test("patternmatcher TestMatches table (MatchesOrParentMatches and the walk)", () => {
  for (const [pattern, text, want] of PM_TESTS) {
    const m = new IgnoreMatcher([pattern]);
    assert.equal(m.matches(text), want, `pattern=${pattern} text=${text}`);
    assert.equal(excludedByWalk(m, text), want, `walk: pattern=${pattern} text=${text}`);
  }
});

Deno.test("patternmatcher multi-pattern cases", () => {
  const cases: [string[], string, boolean][] = [
    [["**", "!util/docker/web"], "util/docker/web/foo", false],
    [["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", true],
    [
      ["**", "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"],
      "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
      false,
    ],
    [["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", false],
    [["*.go"], "fileutils.go", true],
    [["*"], "fileutils.go", true],
    [["!fileutils.go", "*.go"], "fileutils.go", true],
    [["*.go", "!fileutils.go"], "fileutils.go", false],
    [["docs", "!docs/README.md"], "docs/README.md", false],
    [["docs/", "!docs/README.md"], "docs/README.md", false],
    [["docs/*", "!docs/README.md"], "docs/README.md", false],
    [["*.go"], ".", false],
    [[], "any/path/there", false],
  ];
  for (const [patterns, text, want] of cases) {
    const m = new IgnoreMatcher(patterns);
    assert.equal(m.matches(text), want, `${JSON.stringify(patterns)} ${text}`);
  }
});

// moby/patternmatcher TestMatch (Go's Match table, through the matcher: parents match too).
Deno.test("patternmatcher TestMatch: Go's table through the matcher", () => {
  // Go's table, through the matcher: a pattern also matches below a matching parent.
  const cases = GO_MATCH_TESTS.map(([pattern, text, want]) =>
    [pattern, text, pattern === "a*" && text === "ab/c" ? true : want] as const
  );
  for (const [pattern, text, want] of cases) {
    if (want === BAD) {
      assert.throws(() => new IgnoreMatcher([pattern]), KanikoError, pattern);
    } else {
      assert.equal(new IgnoreMatcher([pattern]).matches(text), want, `${pattern} ${text}`);
    }
  }
});

Deno.test("patternmatcher: cleaning, trimming and exclusion flags", () => {
  assert.deepEqual(new IgnoreMatcher(["docs", "config", ""]).patterns, ["docs", "config"]);
  const m = new IgnoreMatcher(["docs", "  !docs/README.md  "]);
  assert.equal(m.hasExceptions, true);
  assert.deepEqual(m.patterns, ["docs", "!docs/README.md"]);
  assert.throws(() => new IgnoreMatcher(["!"]), /illegal exclusion pattern "!"/);
});

Deno.test("Docker docs: */temp*, */*/temp*, temp?", () => {
  const m = IgnoreMatcher.parse("# comment\n*/temp*\n*/*/temp*\ntemp?\n");
  const yes = [
    "somedir/temporary.txt",
    "somedir/temp",
    "somedir/temp/inside.txt",
    "somedir/subdir/temporary.txt",
    "tempa",
    "tempb",
    "tempb/x",
  ];
  const no = ["temporary.txt", "temp", "tempab", "a/b/c/temp.txt", "a/b/c/tempa", "# comment"];
  for (const p of yes) assert.equal(m.matches(p), true, p);
  for (const p of no) assert.equal(m.matches(p), false, p);
});

Deno.test("Docker docs: leading and trailing slashes are disregarded", () => {
  for (const pattern of ["/foo/bar/", "/foo/bar", "foo/bar/", "foo/bar"]) {
    const m = IgnoreMatcher.parse(pattern + "\n");
    assert.equal(m.matches("foo/bar"), true, pattern);
    assert.equal(m.matches("foo/bar/baz.txt"), true, pattern);
    assert.equal(m.matches("foo"), false, pattern);
    assert.equal(m.matches("x/foo/bar"), false, pattern);
  }
});

Deno.test("Docker docs: # in column 1 is a comment, the pattern . matches nothing", () => {
  const m = IgnoreMatcher.parse("#/this/is/a/comment\n.\n");
  assert.deepEqual(m.patterns, ["."]);
  assert.equal(m.matches("this/is/a/comment"), false);
  assert.equal(m.matches("anything"), false);
  assert.equal(m.matches("."), false);
});

Deno.test("Docker docs: ** matches any number of directories", () => {
  expectExcluded(["**/*.go"], ["main.go", "a/b.go", "a/b/c/d.go"], ["a/b.goo", "go", "a/go"]);
});

Deno.test("Docker docs: *.md with !README.md", () => {
  expectExcluded(["*.md", "!README.md"], ["CHANGES.md", "a.md"], [
    "README.md",
    "docs/a.md",
    "x.txt",
  ]);
});

Deno.test("Docker docs: exception order, !README*.md then README-secret.md", () => {
  expectExcluded(
    ["*.md", "!README*.md", "README-secret.md"],
    ["README-secret.md", "other.md"],
    ["README.md", "README-dev.md"],
  );
});

Deno.test("Docker docs: exception order, README-secret.md then !README*.md", () => {
  expectExcluded(
    ["*.md", "README-secret.md", "!README*.md"],
    ["other.md"],
    ["README-secret.md", "README.md", "README-dev.md"],
  );
});

Deno.test("Docker docs: Dockerfile and .dockerignore can be excluded like any file", () => {
  expectExcluded(["Dockerfile", ".dockerignore"], ["Dockerfile", ".dockerignore"], [
    "Dockerfile.prod",
    "sub/Dockerfile",
  ]);
});

Deno.test("an include list: * then exceptions", () => {
  expectExcluded(
    ["*", "!src", "!package.json"],
    ["node_modules", "node_modules/x/index.js", "README.md"],
    ["src", "src/a/b.ts", "package.json"],
  );
});

Deno.test("a directory pattern excludes everything below unless re-included", () => {
  expectExcluded(
    ["build", "!build/keep", "build/keep/tmp"],
    ["build", "build/out.o", "build/keep/tmp", "build/keep/tmp/x"],
    ["build/keep", "build/keep/file", "builder"],
  );
});

Deno.test("patternmatcher shortcuts: prefix and suffix tests behave as in Docker", () => {
  // "**" at the start makes a suffix test on the whole path: **file also matches "myfile".
  expectExcluded(["**file"], ["file", "myfile", "dir/myfile"], ["file.txt"]);
  expectExcluded(["**.go"], ["a.go", "x/y/b.go"], ["a.gox"]);
  // "**" at the end after plain text is a prefix test.
  expectExcluded(["abc**"], ["abc", "abcdef", "abc/x"], ["ab"]);
  expectExcluded(["dir/**"], ["dir/x", "dir/x/y"], ["dir", "dirx"]);
});

Deno.test("RE2 quirks of Docker's matcher are kept", () => {
  // A POSIX class inside a class (RE2 syntax) — Go's Match would read it as a list of letters.
  expectExcluded(["[[:digit:]]x"], ["1x", "9x"], ["ax", ":x"]);
  // An escaped letter is an RE2 escape: \d is a digit.
  expectExcluded(["file\\d"], ["file1"], ["filed"]);
  // Without other wildcards a pattern is compared as text; with them, ^ becomes an anchor and
  // the pattern matches nothing.
  expectExcluded(["a^b"], ["a^b"], ["ab"]);
  expectExcluded(["a^b*"], [], ["a^b", "a^bc", "ab"]);
  // * inside a class becomes [^/]* in the regular expression: [*] matches names ending in ].
  expectExcluded(["[*]"], ["]", "[]"], ["*"]);
  // [!a] is a class of ! and a (no negation in Go's syntax).
  expectExcluded(["[!a]"], ["!", "a"], ["b"]);
  expectExcluded(["[^a]"], ["b"], ["a"]);
});

Deno.test("malformed patterns fail with the file and line", () => {
  const cases: [string, RegExp][] = [
    ["ok\n[\n", /my\.dockerignore:2: invalid pattern "\[": syntax error in pattern/],
    ["ok\nfoo\\\n", /my\.dockerignore:2: invalid pattern "foo\\\\"/],
    ["a\n\n!\n", /my\.dockerignore:3: illegal exclusion pattern "!"/],
    ["[a-b-c]\n", /my\.dockerignore:1: invalid pattern/],
    ["[z-a]\n", /my\.dockerignore:1: invalid pattern/], // RE2 rejects the empty range
  ];
  for (const [text, want] of cases) {
    assert.throws(() => IgnoreMatcher.parse(text, "my.dockerignore"), (e) => {
      assert.ok(e instanceof KanikoError);
      assert.match(e.message, want);
      assert.ok(!e.message.includes("\n"));
      return true;
    });
  }
});

Deno.test("mayContainExceptions follows BuildKit's walk rule", () => {
  assert.equal(new IgnoreMatcher(["foo"]).mayContainExceptions("foo"), false);
  const literal = new IgnoreMatcher(["foo", "!foo/bar/baz"]);
  assert.equal(literal.mayContainExceptions("foo"), true);
  assert.equal(literal.mayContainExceptions("foo/bar"), true);
  assert.equal(literal.mayContainExceptions("foo/other"), false);
  assert.equal(literal.mayContainExceptions("bar"), false);
  const trailing = new IgnoreMatcher(["*", "!src/**"]);
  assert.equal(trailing.mayContainExceptions("src"), true);
  assert.equal(trailing.mayContainExceptions("node_modules"), false);
  const wild = new IgnoreMatcher(["*", "!**/*.go"]);
  assert.equal(wild.mayContainExceptions("node_modules"), true);
});

Deno.test("paths are cleaned before matching; the root is never excluded", () => {
  const m = new IgnoreMatcher(["**"]);
  assert.equal(m.matches("./a/b"), true);
  assert.equal(m.matches("/a"), true);
  assert.equal(m.matches("."), false);
  assert.equal(m.matches(""), false);
  assert.equal(m.matches("/"), false);
});
