/**
 * `USER` resolution with Docker's (BuildKit's) semantics, from the image's own `/etc/passwd` and
 * `/etc/group` (read inside the build root, symlinks resolved within it; never the host's):
 *
 * - `UID:GID` with both numeric (or `root`): taken as is, no supplementary groups, no files read
 *   (BuildKit's fast path, `executor/oci/user.go`).
 * - otherwise runc/moby `user.GetExecUser`: a name must have a passwd entry (`unable to find user
 *   NAME: no matching entries in passwd file`); a numeric uid needs none (then gid 0 and no
 *   supplementary groups); a matched user gets its passwd gid and, as supplementary groups, every
 *   group listing it by name; an explicit group (`:GROUP`, name or gid) replaces the primary gid
 *   and drops the supplementary groups.
 * - HOME is the passwd home of the final uid, `/` without an entry (runc sets it that way).
 * @module
 */
import { KanikoError } from "../errors.ts";
import { resolveInRoot } from "./mounts.ts";

/** The identity a RUN step runs with. */
export interface ExecUser {
  uid: number;
  gid: number;
  /** Supplementary groups (the primary gid is not repeated here). */
  groups: number[];
  /** Home directory for `HOME` when the environment has none. */
  home: string;
}

/** A `/etc/passwd` entry. */
export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** A `/etc/group` entry. */
export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

const MAX_ID = 2 ** 31 - 1;
const MAX_FILE = 64 * 1024 * 1024;

/** Go's `strconv.Atoi` (optional sign, decimal digits) or undefined. */
function atoi(text: string): number | undefined {
  if (!/^[+-]?\d+$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Field `i` as a number the way runc parses it (invalid means 0). */
function intField(fields: string[], i: number): number {
  return atoi(fields[i] ?? "") ?? 0;
}

/** Parses `/etc/passwd` text (runc's parser: trimmed lines, empty ones skipped). */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line) continue;
    const f = line.split(":");
    out.push({ name: f[0], uid: intField(f, 2), gid: intField(f, 3), home: f[5] ?? "" });
  }
  return out;
}

/** Parses `/etc/group` text. */
export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line) continue;
    const f = line.split(":");
    const members = (f[3] ?? "").split(",").filter((m) => m !== "");
    out.push({ name: f[0], gid: intField(f, 2), members });
  }
  return out;
}

/** Reads a small regular file inside the root, or undefined when it is absent. */
function readInRoot(root: string, path: string): string | undefined {
  let host: string;
  try {
    host = resolveInRoot(root, path);
  } catch {
    return undefined; // a symlink loop: open(2) would fail with ELOOP
  }
  try {
    const info = Deno.statSync(host);
    if (!info.isFile) return undefined;
    if (info.size > MAX_FILE) throw new KanikoError(`${path} in the image is too large to read`);
    return Deno.readTextFileSync(host);
  } catch (e) {
    if (e instanceof KanikoError) throw e;
    return undefined;
  }
}

/** BuildKit's `parseUID`: `root` or a decimal uint32. */
function parseFastId(text: string): number | undefined {
  if (text === "root") return 0;
  if (!/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return n <= 0xffffffff ? n : undefined;
}

function rangeCheck(id: number): number {
  if (id < 0 || id > MAX_ID) {
    throw new KanikoError(`uids and gids must be in range 0-${MAX_ID}`);
  }
  return id;
}

/**
 * The uid, gid, supplementary groups and home of `userSpec` (`name`, `uid`, `name:group`,
 * `uid:gid`; empty means root) in the image at `root`.
 */
export function resolveUser(root: string, userSpec: string): ExecUser {
  const spec = userSpec.trim();
  const fields = spec.split(":");
  const userArg = fields[0];
  const groupArg = fields[1] ?? "";
  let passwdText: string | undefined;
  let passwdRead = false;
  const passwd = () => {
    if (!passwdRead) {
      passwdText = readInRoot(root, "/etc/passwd");
      passwdRead = true;
    }
    return passwdText === undefined ? undefined : parsePasswd(passwdText);
  };
  const homeOf = (uid: number) => {
    const entry = passwd()?.find((u) => u.uid === uid);
    return entry?.home || "/";
  };

  if (fields.length > 1) {
    const uid = parseFastId(fields[0]);
    const gid = parseFastId(fields.slice(1).join(":"));
    if (uid !== undefined && gid !== undefined) return { uid, gid, groups: [], home: homeOf(uid) };
  }

  const uidArg = atoi(userArg);
  const gidArg = atoi(groupArg);
  const users = passwd();
  let uid = 0;
  let gid = 0;
  let home = "";
  let matched: string | undefined;
  const match = users?.find((u) =>
    userArg === "" ? u.uid === 0 : uidArg !== undefined ? u.uid === uidArg : u.name === userArg
  );
  if (match) {
    matched = match.name;
    uid = match.uid;
    gid = match.gid;
    home = match.home;
  } else if (userArg !== "") {
    if (uidArg === undefined) {
      throw new KanikoError(`unable to find user ${userArg}: no matching entries in passwd file`, {
        hint: "create the user in an earlier RUN (useradd/adduser) or use a numeric uid",
      });
    }
    uid = rangeCheck(uidArg);
  }

  let groups: number[] = [];
  if (groupArg !== "" || matched !== undefined) {
    const groupText = readInRoot(root, "/etc/group");
    const all = groupText === undefined ? [] : parseGroup(groupText);
    if (groupArg !== "") {
      const g = all.find((g) => gidArg !== undefined ? g.gid === gidArg : g.name === groupArg);
      if (g) gid = g.gid;
      else if (gidArg !== undefined) gid = rangeCheck(gidArg);
      else {
        throw new KanikoError(
          `unable to find group ${groupArg}: no matching entries in group file`,
          {
            hint: "create the group in an earlier RUN (groupadd/addgroup) or use a numeric gid",
          },
        );
      }
    } else {
      groups = all.filter((g) => g.members.includes(matched!)).map((g) => g.gid);
    }
  }
  return { uid, gid, groups, home: home || (match ? "/" : homeOf(uid)) };
}
