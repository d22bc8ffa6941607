/**
 * `COPY --chmod` / `ADD --chmod` values as BuildKit applies them: an octal number (at most
 * `7777`) replaces every permission bit including setuid/setgid/sticky; a symbolic mode
 * (`u+x,g-w`, `go=u-w`, `a+rX`, `+t`) is applied clause by clause with chmod(1)'s rules and a
 * umask of 0 (BuildKit parses it with `dchapes-mode`, the BSD `setmode(3)` algorithm): `X` adds
 * execute only to directories and to files that already have an execute bit, `s` only acts for
 * `u`/`g`, `t` only when not restricted to `o`, and `u`/`g`/`o` on the right copy that class's
 * current bits.
 * @module
 */
import { KanikoError } from "../errors.ts";

const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const S_ISVTX = 0o1000;
const RWXU = 0o700;
const RWXG = 0o070;
const RWXO = 0o007;
const ALL_R = 0o444;
const ALL_W = 0o222;
const ALL_X = 0o111;
/** setmode(3)'s STANDARD_BITS: everything but the sticky bit. */
const STANDARD = S_ISUID | S_ISGID | RWXU | RWXG | RWXO;

/** One step of a parsed symbolic mode. */
type Step =
  | { op: "+" | "-"; bits: number }
  | { op: "X"; bits: number }
  | { op: "copy"; from: "u" | "g" | "o"; to: number; clear: boolean; set: boolean };

/** A parsed `--chmod` value. */
export interface ModeChange {
  /** The value as written. */
  readonly text: string;
  /** The octal value, when the mode is numeric. */
  readonly octal?: number;
  /** The new permission bits (`0o7777`) of an entry whose current bits are `mode`. */
  apply(mode: number, isDir: boolean): number;
}

/**
 * Parses a `--chmod` value. Throws a {@link KanikoError} naming the value when it is neither an
 * octal mode up to 7777 nor a valid symbolic mode.
 */
export function parseChmod(text: string): ModeChange {
  if (/^[0-9]/.test(text)) {
    if (!/^[0-7]+$/.test(text) || parseInt(text, 8) > 0o7777) throw invalid(text);
    const octal = parseInt(text, 8);
    return { text, octal, apply: () => octal };
  }
  const steps = parseSymbolic(text);
  if (steps === null) throw invalid(text);
  return { text, apply: (mode, isDir) => applySteps(steps, mode & 0o7777, isDir) };
}

function invalid(text: string): KanikoError {
  return new KanikoError(
    `invalid --chmod value ${JSON.stringify(text)}: it should be octal (0755, at most 7777) ` +
      `or symbolic (u+x,g-w)`,
    { code: "INVALID_CHMOD" },
  );
}

const WHO: Record<string, number> = {
  a: STANDARD,
  u: S_ISUID | RWXU,
  g: S_ISGID | RWXG,
  o: RWXO,
};

/** The steps of a symbolic mode, or null when it is malformed. */
function parseSymbolic(text: string): Step[] | null {
  if (text === "") return null;
  const steps: Step[] = [];
  let i = 0;
  const at = () => text[i] ?? "";
  while (true) {
    let who = 0;
    while (WHO[at()] !== undefined) who |= WHO[text[i++]];
    // One or more operations, each with its permission letters, until "," or the end.
    do {
      const op = at();
      if (op !== "+" && op !== "-" && op !== "=") return null;
      i++;
      i = parseAction(text, i, op, who, steps);
    } while (i < text.length && at() !== ",");
    if (i >= text.length) break;
    i++; // the comma
    if (i >= text.length) return null;
  }
  return steps;
}

/** Parses the permission letters after one operator; returns the index after them. */
function parseAction(text: string, start: number, op: string, whoIn: number, out: Step[]): number {
  let who = whoIn & ~S_ISVTX;
  let perm = 0;
  let permX = 0;
  let equalDone = false;
  const flush = () => {
    if (perm !== 0 || (op === "=" && !equalDone)) {
      if (op === "=") equalDone = true;
      addStep(out, op, who, perm);
      perm = 0;
    }
    if (permX !== 0) {
      out.push({ op: "X", bits: who !== 0 ? who & permX : permX });
      permX = 0;
    }
  };
  let i = start;
  for (;; i++) {
    const c = text[i] ?? "";
    if (c === "r") perm |= ALL_R;
    else if (c === "w") perm |= ALL_W;
    else if (c === "x") perm |= ALL_X;
    else if (c === "X") permX = op === "+" ? ALL_X : permX;
    else if (c === "s") {
      if (who === 0 || (who & ~RWXO) !== 0) perm |= S_ISUID | S_ISGID;
    } else if (c === "t") {
      if (who === 0 || (who & ~RWXO) !== 0) {
        who |= S_ISVTX;
        perm |= S_ISVTX;
      }
    } else if (c === "u" || c === "g" || c === "o") {
      if (perm !== 0) {
        addStep(out, op, who, perm);
        perm = 0;
      }
      if (op === "=") equalDone = true;
      if (permX !== 0) {
        out.push({ op: "X", bits: who !== 0 ? who & permX : permX });
        permX = 0;
      }
      out.push(copyStep(c, who, op));
    } else {
      flush();
      return i;
    }
  }
}

/** `+`, `-` or `=` of `perm` for the classes in `who` (all classes when none was named). */
function addStep(out: Step[], op: string, who: number, perm: number): void {
  if (op === "=") {
    out.push({ op: "-", bits: who !== 0 ? who : STANDARD });
    op = "+";
  }
  out.push({ op: op as "+" | "-", bits: who !== 0 ? who & perm : perm });
}

/** `g=u`, `o+g`, `go-u`: copies a class's current bits onto others. */
function copyStep(from: "u" | "g" | "o", who: number, op: string): Step {
  const to = who === 0
    ? 0o7
    : ((who & 0o400) ? 4 : 0) | ((who & 0o040) ? 2 : 0) | ((who & 0o004) ? 1 : 0);
  return { op: "copy", from, to, clear: op === "-" || op === "=", set: op === "+" || op === "=" };
}

function applySteps(steps: Step[], original: number, isDir: boolean): number {
  let mode = original;
  for (const s of steps) {
    switch (s.op) {
      case "+":
        mode |= s.bits;
        break;
      case "-":
        mode &= ~s.bits;
        break;
      case "X":
        if ((original & ALL_X) !== 0 || isDir) mode |= s.bits;
        break;
      case "copy": {
        const value = s.from === "u"
          ? (mode & RWXU) >> 6
          : s.from === "g"
          ? (mode & RWXG) >> 3
          : mode & RWXO;
        for (const [flag, shift] of [[4, 6], [2, 3], [1, 0]]) {
          if ((s.to & flag) === 0) continue;
          if (s.clear) mode &= ~((s.set ? 0o7 : value) << shift);
          if (s.set) mode |= value << shift;
        }
        break;
      }
    }
  }
  return mode & 0o7777;
}
