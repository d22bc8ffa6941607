/**
 * `--chown=USER[:GROUP]` as BuildKit resolves it (`solver/llbsolver/file/user_linux.go`), against
 * the stage being built: a number is an id, and a lone numeric user is also the group
 * (`--chown=1000` is 1000:1000, unlike `USER 1000`); a user name takes its uid and primary gid
 * from the root's `/etc/passwd`, a group name its gid from `/etc/group` (read by
 * {@link resolveUser}, inside the root). An empty user is root. A name that is not there is an
 * error (BuildKit silently falls back to root; the classic builder and buildah fail).
 * @module
 */
import { KanikoError } from "../errors.ts";
import type { Owner } from "./copy_tree.ts";
import { resolveUser } from "./users.ts";

const ID = /^[0-9]+$/;

/** Resolves a `--chown` value inside `root`. */
export function resolveChown(root: string, spec: string): Owner {
  const colon = spec.indexOf(":");
  const user = colon < 0 ? spec : spec.slice(0, colon);
  const group = colon < 0 ? undefined : spec.slice(colon + 1);
  let uid = 0;
  let gid = 0;
  try {
    if (ID.test(user)) {
      uid = gid = toId(user, spec);
    } else if (user !== "") {
      ({ uid, gid } = resolveUser(root, user));
    }
    if (group !== undefined && group !== "") {
      gid = ID.test(group) ? toId(group, spec) : resolveUser(root, `0:${group}`).gid;
    }
  } catch (e) {
    if (!(e instanceof KanikoError)) throw e;
    throw new KanikoError(`--chown=${spec}: ${e.message}`, { hint: e.hint, code: "UNKNOWN_USER" });
  }
  return { uid, gid };
}

function toId(text: string, spec: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n > 0xfffffffe) {
    throw new KanikoError(`--chown=${spec}: ${text} is not a valid id`);
  }
  return n;
}
