/**
 * Parsing of `WWW-Authenticate` header values (RFC 7235 §4.1, RFC 6750 §3): one or more
 * challenges, each an auth scheme followed by either a token68 or a comma list of auth-params whose
 * values are tokens or quoted strings (with backslash escapes, commas allowed inside the quotes).
 * Parsing never throws: malformed parts are skipped, so a registry's odd header degrades to
 * "no usable challenge" rather than a crash.
 * @module
 */

/** One authentication challenge. */
export interface Challenge {
  /** The auth scheme, lowercased (schemes are case-insensitive): `bearer`, `basic`, … */
  scheme: string;
  /** Auth-params by lowercased name (names are case-insensitive); the first occurrence wins. */
  params: Record<string, string>;
  /** The token68 form of the challenge, when it has one instead of params. */
  token68?: string;
}

const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*/;

/** A cursor over the header text. */
class Scanner {
  pos = 0;
  constructor(readonly text: string) {}

  get done(): boolean {
    return this.pos >= this.text.length;
  }

  peek(): string {
    return this.text[this.pos] ?? "";
  }

  /** Skips spaces and tabs (`OWS`/`BWS`). */
  skipSpace(): void {
    while (this.peek() === " " || this.peek() === "\t") this.pos++;
  }

  /** Skips spaces, tabs and empty list elements (commas). */
  skipSpaceAndCommas(): void {
    while (/[ \t,]/.test(this.peek()) && !this.done) this.pos++;
  }

  /** Reads a token (`1*tchar`); empty when none is there. */
  token(): string {
    const start = this.pos;
    while (!this.done && TCHAR.test(this.peek())) this.pos++;
    return this.text.slice(start, this.pos);
  }

  /**
   * Reads an unquoted value: a token, leniently extended to any run of characters other than
   * whitespace, comma and quote (some servers send `realm=https://…` unquoted). Never starts
   * with `=`, so token68 padding is not taken for a value.
   */
  bareValue(): string {
    const match = /^[^\s,"=][^\s,"]*/.exec(this.text.slice(this.pos));
    if (!match) return "";
    this.pos += match[0].length;
    return match[0];
  }

  /** Reads a quoted string at the cursor (which is on the opening quote), unescaping it. */
  quoted(): string {
    let out = "";
    this.pos++; // opening quote
    while (!this.done) {
      const c = this.text[this.pos++];
      if (c === '"') return out;
      if (c === "\\" && !this.done) out += this.text[this.pos++];
      else out += c;
    }
    return out; // unterminated: take the rest
  }

  /** Skips to just before the next comma outside a quoted string (error recovery). */
  skipElement(): void {
    while (!this.done && this.peek() !== ",") {
      if (this.peek() === '"') this.quoted();
      else this.pos++;
    }
  }

  /** True when only whitespace remains before the next comma or the end. */
  atElementEnd(): boolean {
    const save = this.pos;
    this.skipSpace();
    const end = this.done || this.peek() === ",";
    this.pos = save;
    return end;
  }
}

/**
 * Tries to read `name BWS "=" BWS (token / quoted-string)` followed by the end of a list element.
 * Restores the cursor and returns undefined when the text there is not an auth-param.
 */
function readParam(s: Scanner): [string, string] | undefined {
  const save = s.pos;
  const name = s.token();
  s.skipSpace();
  if (!name || s.peek() !== "=") {
    s.pos = save;
    return undefined;
  }
  s.pos++;
  s.skipSpace();
  const value = s.peek() === '"' ? s.quoted() : s.bareValue();
  if (!s.atElementEnd()) {
    s.pos = save;
    return undefined;
  }
  return [name.toLowerCase(), value];
}

/** Reads a token68 that makes up a whole list element, or restores the cursor. */
function readToken68(s: Scanner): string | undefined {
  const match = TOKEN68.exec(s.text.slice(s.pos));
  if (!match) return undefined;
  const save = s.pos;
  s.pos += match[0].length;
  if (s.atElementEnd()) return match[0];
  s.pos = save;
  return undefined;
}

/** True when the cursor is at `token 1*SP …` that is not `token BWS =`: the start of a challenge. */
function atNewChallenge(s: Scanner): boolean {
  const save = s.pos;
  const name = s.token();
  const spaced = s.peek() === " " || s.peek() === "\t";
  s.skipSpace();
  const isChallenge = name !== "" && (s.done || s.peek() === "," || (spaced && s.peek() !== "="));
  s.pos = save;
  return isChallenge;
}

/** Reads the params (or token68) of one challenge, up to the start of the next challenge. */
function readChallengeBody(s: Scanner, challenge: Challenge): void {
  s.skipSpace();
  // A bare scheme is followed by a comma or the end; params after that comma stay with it.
  if (!s.done && s.peek() !== "," && !readFirstParam(s, challenge)) {
    const t68 = readToken68(s);
    if (t68 !== undefined) {
      challenge.token68 = t68;
      return;
    }
    s.skipElement();
  }
  for (;;) {
    const save = s.pos;
    s.skipSpaceAndCommas();
    if (s.done || atNewChallenge(s)) {
      s.pos = save;
      return;
    }
    const param = readParam(s);
    if (param) {
      if (!(param[0] in challenge.params)) challenge.params[param[0]] = param[1];
    } else s.skipElement();
  }
}

function readFirstParam(s: Scanner, challenge: Challenge): boolean {
  const param = readParam(s);
  if (!param) return false;
  challenge.params[param[0]] = param[1];
  return true;
}

/**
 * Parses a `WWW-Authenticate` header value (several headers joined with `, ` are fine) into its
 * challenges, in order. Returns `[]` for a missing or empty header.
 *
 * @example
 * parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io"')
 * // [{ scheme: "bearer", params: { realm: "https://auth.docker.io/token", service: "registry.docker.io" } }]
 */
export function parseChallenges(header: string | null | undefined): Challenge[] {
  const out: Challenge[] = [];
  if (!header) return out;
  const s = new Scanner(header);
  while (true) {
    s.skipSpaceAndCommas();
    if (s.done) break;
    const scheme = s.token();
    if (!scheme) {
      s.pos++;
      s.skipElement();
      continue;
    }
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    readChallengeBody(s, challenge);
    out.push(challenge);
  }
  return out;
}

/** The first challenge of `scheme` (case-insensitive) among `challenges`, if any. */
export function findChallenge(challenges: Challenge[], scheme: string): Challenge | undefined {
  const wanted = scheme.toLowerCase();
  return challenges.find((c) => c.scheme === wanted);
}
