/**
 * Here-documents: detection on RUN/COPY/ADD lines (as BuildKit's shell lexer splits them),
 * quoted delimiters, `<<-` tab stripping, several per line, file descriptors, line numbers.
 */
import assert from "node:assert/strict";
import type { Heredoc } from "../../lib/dockerfile/ast.ts";
import { heredocsFromLine, parseHeredocWord } from "../../lib/dockerfile/heredoc.ts";
import { parseDockerfile } from "../../lib/dockerfile/parser.ts";
import { type ParseCase, registerCases } from "./_parser_helpers.ts";

function doc(name: string, content: string, extra: Partial<Heredoc> = {}): Heredoc {
  return { name, content, expand: true, chomp: false, ...extra };
}

const HEREDOCS: ParseCase[] = [
  {
    name: "RUN <<EOF",
    input: "FROM a\nRUN <<EOF\necho hi\necho there\nEOF\nRUN b\n",
    fields: {
      index: 1,
      args: ["<<EOF"],
      heredocs: [doc("EOF", "echo hi\necho there\n")],
      line: 2,
      endLine: 5,
    },
    dump: ['(from "a")', '(run "<<EOF")', '(run "b")'],
  },
  {
    name: "an empty here-document",
    input: "RUN <<EMPTY\nEMPTY\n",
    fields: { heredocs: [doc("EMPTY", "")] },
  },
  {
    name: "<<- strips leading tabs of the body and the delimiter",
    input: "RUN <<-EOT\n\tbaz\n\t\tquux\n  spaces\n\tEOT\n",
    fields: { heredocs: [doc("EOT", "baz\nquux\n  spaces\n", { chomp: true })], endLine: 5 },
  },
  {
    name: "<< keeps tabs and needs the delimiter unindented",
    input: "RUN <<EOT\n\tfoo\n\tEOT\nEOT\n",
    fields: { heredocs: [doc("EOT", "\tfoo\n\tEOT\n")] },
  },
  {
    name: "a single-quoted delimiter disables expansion",
    input: "RUN <<'EOF'\necho $HOME\nEOF\n",
    fields: { heredocs: [doc("EOF", "echo $HOME\n", { expand: false })] },
  },
  {
    name: "a double-quoted delimiter disables expansion",
    input: 'RUN <<"EOF"\nx\nEOF\n',
    fields: { heredocs: [doc("EOF", "x\n", { expand: false })] },
  },
  {
    name: "a partly quoted delimiter disables expansion",
    input: 'RUN <<E"O"F\nx\nEOF\n',
    fields: { heredocs: [doc("EOF", "x\n", { expand: false })] },
  },
  {
    name: "<<- with a quoted delimiter",
    input: "RUN <<-'NOEXPAND'\n\tdon't $X\nNOEXPAND\n",
    fields: { heredocs: [doc("NOEXPAND", "don't $X\n", { expand: false, chomp: true })] },
  },
  {
    name: "several here-documents on one line",
    input: "COPY <<FILE1 <<FILE2 /dest/\ncontent 1\nFILE1\ncontent 2\nFILE2\n",
    fields: {
      args: ["<<FILE1", "<<FILE2", "/dest/"],
      heredocs: [doc("FILE1", "content 1\n"), doc("FILE2", "content 2\n")],
      endLine: 5,
    },
  },
  {
    name: "bodies are read in order of announcement",
    input: "COPY <<X <<Y /dest\nY\nX\nX\nY\n",
    fields: { heredocs: [doc("X", "Y\n"), doc("Y", "X\n")] },
  },
  {
    name: "ADD <<EOF",
    input: "ADD <<EOF /f\nhello\nEOF\n",
    fields: { heredocs: [doc("EOF", "hello\n")] },
  },
  {
    name: "a file descriptor before <<",
    input: "RUN 3<<EOF\nx\nEOF\n",
    fields: { heredocs: [doc("EOF", "x\n", { fd: 3 })] },
  },
  {
    name: "a quoted << is no here-document",
    input: 'RUN "<<NOHEREDOC"\n',
    fields: { heredocs: [] },
  },
  {
    name: "a single-quoted << is no here-document",
    input: "RUN echo '<<EOF'\n",
    fields: { heredocs: [] },
  },
  {
    name: "the exec form has no here-documents",
    input: 'RUN ["<<EOF"]\nRUN ["<<\'EOF\'"]\n',
    fields: { heredocs: [] },
  },
  {
    name: "only RUN, COPY and ADD take here-documents",
    input: "USER <<INVALID\nINVALID\n",
    dump: ['(user "<<INVALID")', '(invalid "")'],
  },
  {
    name: "comments and blank lines in a body are kept",
    input: "RUN <<COMMENT\n# internal\n\necho x # trailing\nCOMMENT\n",
    fields: { heredocs: [doc("COMMENT", "# internal\n\necho x # trailing\n")] },
  },
  {
    name: "CRLF bodies keep their carriage returns",
    input: "RUN <<EOF\r\nx\r\nEOF\r\n",
    fields: { heredocs: [doc("EOF", "x\r\n")] },
  },
  {
    name: "a missing delimiter fails",
    input: "FROM a\nRUN <<EOF\necho\n",
    error: /^Dockerfile:2: unterminated heredoc: no line "EOF"/,
  },
  {
    name: "the delimiter must match exactly",
    input: "RUN <<EOF\nEOF \n",
    error: /unterminated heredoc/,
  },
  {
    name: "the second of two missing fails",
    input: "COPY <<A <<B /d\na\nA\n",
    error: /no line "B"/,
  },
  {
    name: "a here-document after a continuation line",
    input: "RUN cat <<EOF \\\n  > /out\nhello\nEOF\n",
    fields: {
      args: ["cat <<EOF   > /out"],
      heredocs: [doc("EOF", "hello\n")],
      line: 1,
      endLine: 4,
    },
  },
  {
    name: "a redirection glued to the delimiter",
    input: "RUN cat <<EOF>/f\nx\nEOF>/f\n",
    fields: { heredocs: [doc("EOF>/f", "x\n")] },
  },
  {
    name: "RUN --mount with a here-document",
    input: "RUN --mount=type=cache,target=/c <<MOUNT\necho\nMOUNT\n",
    fields: { flags: ["--mount=type=cache,target=/c"], heredocs: [doc("MOUNT", "echo\n")] },
  },
  { name: "<< alone is no here-document", input: "RUN echo << x\n", fields: { heredocs: [] } },
  { name: "<<< is a here-string", input: "RUN cat <<<EOF\n", fields: { heredocs: [] } },
  {
    name: "an escaped << is no here-document",
    input: "RUN echo \\<<EOF\n",
    fields: { heredocs: [] },
  },
  {
    name: "a longer line is not the delimiter",
    input: "RUN <<EOF\nEOFX\nEOF\n",
    fields: { heredocs: [doc("EOF", "EOFX\n")] },
  },
  {
    name: "here-documents with the backtick escape",
    input: "# escape=`\nRUN <<EOF\nc:\\x\nEOF\n",
    fields: { heredocs: [doc("EOF", "c:\\x\n")] },
  },
  {
    name: "ONBUILD RUN with a here-document",
    input: "ONBUILD RUN <<EOF\necho x\nEOF\nRUN y\n",
    check: (df) => {
      const [onbuild, run] = df.instructions;
      assert.deepEqual(onbuild.onbuild?.heredocs, [doc("EOF", "echo x\n")]);
      assert.deepEqual([onbuild.line, onbuild.endLine, run.line], [1, 3, 4]);
    },
  },
  {
    name: "an unterminated quote hides here-documents",
    input: "RUN echo 'x <<EOF\n",
    fields: { heredocs: [] },
  },
  {
    name: "a body line longer than the limit fails",
    input: `RUN <<EOF\n${"x".repeat(70000)}\nEOF\n`,
    error: /^Dockerfile:2: line is longer/,
  },
];

registerCases("parser heredocs", HEREDOCS);

Deno.test("heredoc words: valid, invalid and not here-documents (BuildKit's table)", () => {
  for (const src of ["<<EOF", "<<'EOF'", '<<"EOF"', "<<-EOF", "<<-'EOF'", '<<-"EOF"']) {
    assert.equal(parseHeredocWord(src)?.name, "EOF", src);
  }
  for (const src of ["", "EOF", "<<", "<<-", "<EOF", "<<<EOF", "<<'EOF", '<<"EOF', "<<EOF'"]) {
    assert.equal(parseHeredocWord(src), null, src);
  }
  assert.deepEqual(parseHeredocWord("12<<-E"), { name: "E", expand: true, chomp: true, fd: 12 });
});

Deno.test("heredoc words found on a line (BuildKit's table)", () => {
  const names = (line: string) => heredocsFromLine(line).map((h) => h.name);
  assert.deepEqual(names("RUN <<EOF"), ["EOF"]);
  assert.deepEqual(names("RUN <<-EOF"), ["EOF"]);
  assert.deepEqual(names("RUN <<'EOF'"), ["EOF"]);
  assert.deepEqual(names("RUN 4<<EOF"), ["EOF"]);
  assert.deepEqual(names("RUN <<EOF <<EOF2"), ["EOF", "EOF2"]);
  assert.deepEqual(names("RUN '<<EOF'"), []);
  assert.deepEqual(names('RUN "<<EOF"'), []);
  assert.deepEqual(names("RUN <<'E O F'"), ["E O F"]);
  assert.deepEqual(names("RUN <<E\\ F"), ["E F"]);
});

Deno.test("thousands of here-documents parse in linear time", () => {
  const n = 5000;
  let text = "FROM a\n";
  for (let i = 0; i < n; i++) text += `COPY <<F${i} /f${i}\nline ${i}\nF${i}\n`;
  const start = performance.now();
  const df = parseDockerfile(text);
  assert.equal(df.instructions.length, n + 1);
  assert.equal(df.instructions[n].heredocs[0].content, `line ${n - 1}\n`);
  assert.ok(performance.now() - start < 2000);
});
