/**
 * `--chmod` values: octal replaces every bit (setuid/setgid/sticky included); symbolic modes
 * follow chmod(1) with a umask of 0, as BuildKit's `dchapes-mode` applies them.
 */
import assert from "node:assert/strict";
import { KanikoError } from "../../lib/errors.ts";
import { parseChmod } from "../../lib/build/chmod.ts";

const CASES: [string, number, boolean, number][] = [
  ["0755", 0o4644, false, 0o755],
  ["4755", 0o644, false, 0o4755],
  ["1777", 0o755, true, 0o1777],
  ["u+x", 0o644, false, 0o744],
  ["g-w", 0o664, false, 0o644],
  ["+x", 0o644, false, 0o755],
  ["a+rX", 0o600, false, 0o644],
  ["a+rX", 0o610, false, 0o755],
  ["a+rX", 0o700, true, 0o755],
  ["go-rwx,a+X", 0o644, false, 0o600],
  ["u=rwx,go=rx", 0o000, false, 0o755],
  ["go=u-w", 0o755, false, 0o755],
  ["g=u", 0o640, false, 0o660],
  ["o-g", 0o777, false, 0o770],
  ["=r", 0o4755, false, 0o444],
  ["u+s", 0o755, false, 0o4755],
  ["g+s", 0o755, true, 0o2755],
  ["o+s", 0o755, false, 0o755],
  ["+t", 0o755, true, 0o1755],
  ["o+t", 0o755, true, 0o755],
  ["a-x,u+x", 0o755, false, 0o744],
  ["u+w,g+w", 0o444, false, 0o664],
  ["a=", 0o777, false, 0o000],
];

Deno.test("--chmod values apply as chmod(1) with umask 0", () => {
  for (const [text, mode, isDir, want] of CASES) {
    const got = parseChmod(text).apply(mode, isDir);
    assert.equal(got.toString(8), want.toString(8), `${text} on ${mode.toString(8)}`);
  }
});

Deno.test("invalid --chmod values are one-line errors", () => {
  for (const bad of ["8", "17777", "0o755", "u+q", "", ",", "u+x,", "ug", "x+r", "u+x g"]) {
    assert.throws(() => parseChmod(bad), (e) =>
      e instanceof KanikoError && e.message.includes(
        JSON.stringify(bad),
      ), bad);
  }
  assert.equal(parseChmod("0644").octal, 0o644);
  assert.equal(parseChmod("u+x").octal, undefined);
});
