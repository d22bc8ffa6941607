/**
 * What changed between two scans of the same root: a merge of the two trees' sorted child lists,
 * directory by directory, comparing stat records only (no file is read).
 *
 * Rules, per path:
 * - only before → `deleted` (its descendants are not listed: one whiteout hides them all);
 * - only after → `added`, with every descendant;
 * - in both, different type → `changed` (a directory that became a file needs no whiteouts for
 *   its old children: the new entry replaces the whole directory); a new directory's
 *   descendants are all `added`;
 * - both directories, re-created (another inode number, or another birth time — ext4 and tmpfs
 *   reuse a freed inode number at once, so the birth time is what tells — and none of the old
 *   entries survives) → `changed` with `opaque: true` and every descendant `added`, as Docker
 *   writes a directory that was removed and made again (see {@link recreated}). Without birth
 *   times, a directory all of whose old entries are gone or replaced counts as re-created (the
 *   two are indistinguishable then, and both forms write the same entries). A directory with
 *   ignored or mounted paths below it is never made opaque (that would hide them in lower
 *   layers): it gets one whiteout per deleted entry instead;
 * - otherwise `changed` when type, permission bits, owner, size, mtime, ctime, inode number,
 *   symlink target or device number differ. ctime covers chmod, chown, xattr changes, link count
 *   changes and a rewrite that restored the mtime; the scan waits out the timestamp tick (see
 *   `scan.ts`), so equal times and size mean unchanged content. Directories are compared the same
 *   way (their mtime and ctime move when entries are added or removed) and always descended;
 * - except: a non-directory whose link count and ctime alone moved (a hardlink to it was made or
 *   removed: same inode, mode, owner, size and mtime) is unchanged, as in BuildKit (its differs
 *   compare mode, owner, rdev, `security.capability`, size and mtime, never ctime or nlink;
 *   moby/buildkit util/overlay `sameDirent`), in buildah and in Kaniko. A new link `b` to an
 *   unchanged `a` then goes into the layer as a regular file, not as a link to an `a` written
 *   again: the image has the same files as theirs, and the layer does not carry `a` twice. When
 *   the root is known, a file with extended attributes keeps counting as changed (its ctime may
 *   be an xattr change; the scan keeps no xattrs to tell).
 *
 * The root itself is never listed. Output order: parents before children, siblings by name bytes.
 * @module
 */
import { S_IFDIR, S_IFMT } from "../fs/ffi.ts";
import { listXattrs } from "../fs/meta.ts";
import {
  compareBytes,
  decodeName,
  F_BTIME_LO,
  F_BTIME_NS,
  F_CHILD,
  F_CTIME_HI,
  F_CTIME_LO,
  F_CTIME_NS,
  F_GID,
  F_INO_HI,
  F_INO_LO,
  F_MODE,
  F_MTIME_HI,
  F_MTIME_LO,
  F_MTIME_NS,
  F_NAME,
  F_NCHILD,
  F_NLINK,
  F_SIZE_HI,
  F_SIZE_LO,
  F_UID,
  FLAG_BTIME,
  FLAG_SKIPPED,
  MODE_MASK,
  STRIDE,
  type TreeState,
} from "./scan.ts";

/** One changed path (relative, slash-separated). */
export interface Change {
  path: string;
  kind: "added" | "changed" | "deleted";
  /** A directory that replaced the old one: the layer carries `.wh..wh..opq` in it. */
  opaque?: boolean;
}

const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFLNK = 0o120000;

/** A directory pair being merged; `b` is -1 when everything below `a` is new. */
interface Frame {
  b: number;
  a: number;
  prefix: string;
  i: number;
  iEnd: number;
  j: number;
  jEnd: number;
}

/**
 * The changes that turn `before` into `after` (two scans of `root`), in tree order. Resolves at
 * once: the work is a synchronous merge.
 */
export function diffTrees(before: TreeState, after: TreeState, root?: string): Promise<Change[]> {
  return Promise.resolve(diffStates(before, after, root));
}

/**
 * The synchronous diff behind {@link diffTrees}. Without `root` a link-count-only change (see the
 * module notes) counts as a change, since the file's xattrs cannot be checked.
 */
export function diffStates(before: TreeState, after: TreeState, root?: string): Change[] {
  const out: Change[] = [];
  const B = before.rec;
  const A = after.rec;
  const bNames = before.names;
  const aNames = after.names;
  const stack: Frame[] = [frame(before, 0, after, 0, "")];

  const nameAt = (s: TreeState, i: number): string => {
    const r = i * STRIDE;
    return decodeName(s.names, s.rec[r + F_NAME], (s.rec[r + F_MODE] >>> 16) & 0xff);
  };

  while (stack.length > 0) {
    const f = stack[stack.length - 1];
    let descended = false;
    while (!descended && (f.i < f.iEnd || f.j < f.jEnd)) {
      let c: number;
      if (f.i >= f.iEnd) c = 1;
      else if (f.j >= f.jEnd) c = -1;
      else {
        const br = f.i * STRIDE;
        const ar = f.j * STRIDE;
        c = compareBytes(
          bNames,
          B[br + F_NAME],
          (B[br + F_MODE] >>> 16) & 0xff,
          aNames,
          A[ar + F_NAME],
          (A[ar + F_MODE] >>> 16) & 0xff,
        );
      }
      if (c < 0) {
        out.push({ path: f.prefix + nameAt(before, f.i), kind: "deleted" });
        f.i++;
        continue;
      }
      const j = f.j++;
      const ar = j * STRIDE;
      const aType = A[ar + F_MODE] & S_IFMT;
      const path = f.prefix + nameAt(after, j);
      if (c > 0) {
        out.push({ path, kind: "added" });
        if (aType === S_IFDIR && A[ar + F_NCHILD] > 0) {
          stack.push(frame(undefined, -1, after, j, path + "/"));
          descended = true;
        }
        continue;
      }
      const i = f.i++;
      const br = i * STRIDE;
      const bType = B[br + F_MODE] & S_IFMT;
      if (bType !== aType) {
        out.push({ path, kind: "changed" });
        if (aType === S_IFDIR && A[ar + F_NCHILD] > 0) {
          stack.push(frame(undefined, -1, after, j, path + "/"));
          descended = true;
        }
        continue;
      }
      if (aType !== S_IFDIR) {
        if (
          (differs(B, br, A, ar) || !sameSpecial(before, i, after, j, aType)) &&
          !(root !== undefined && linkCountOnly(B, br, A, ar) && !hasXattrs(root, path))
        ) {
          out.push({ path, kind: "changed" });
        }
        continue;
      }
      if (recreated(before, i, after, j) && (B[br + F_MODE] & FLAG_SKIPPED) === 0) {
        out.push({ path, kind: "changed", opaque: true });
        if (A[ar + F_NCHILD] > 0) {
          stack.push(frame(undefined, -1, after, j, path + "/"));
          descended = true;
        }
        continue;
      }
      if (differs(B, br, A, ar)) out.push({ path, kind: "changed" });
      if (B[br + F_NCHILD] > 0 || A[ar + F_NCHILD] > 0) {
        stack.push(frame(before, i, after, j, path + "/"));
        descended = true;
      }
    }
    if (!descended) stack.pop();
  }
  return out;
}

function frame(
  before: TreeState | undefined,
  b: number,
  after: TreeState,
  a: number,
  prefix: string,
): Frame {
  const i = before ? before.rec[b * STRIDE + F_CHILD] : 0;
  const iEnd = before ? i + before.rec[b * STRIDE + F_NCHILD] : 0;
  const j = after.rec[a * STRIDE + F_CHILD];
  return { b, a, prefix, i, iEnd, j, jEnd: j + after.rec[a * STRIDE + F_NCHILD] };
}

/**
 * Whether the stat fields that matter differ (type and permission bits, owner, size, times,
 * inode). A directory's ctime and size are left out, as BuildKit's differ does: a RUN's mount
 * stubs (`/etc/hosts`, …) are created and removed in the image's directories, which moves their
 * ctime (it cannot be restored) and may leave ext4's directory size grown, with nothing changed.
 */
function differs(B: Uint32Array, br: number, A: Uint32Array, ar: number): boolean {
  if (
    (B[br + F_MODE] & S_IFMT_MASK) === S_IFDIR_BITS &&
    (A[ar + F_MODE] & S_IFMT_MASK) === S_IFDIR_BITS
  ) {
    return (B[br + F_MODE] & MODE_MASK) !== (A[ar + F_MODE] & MODE_MASK) ||
      B[br + F_MTIME_NS] !== A[ar + F_MTIME_NS] ||
      B[br + F_MTIME_LO] !== A[ar + F_MTIME_LO] ||
      B[br + F_MTIME_HI] !== A[ar + F_MTIME_HI] ||
      B[br + F_INO_LO] !== A[ar + F_INO_LO] ||
      B[br + F_INO_HI] !== A[ar + F_INO_HI] ||
      B[br + F_UID] !== A[ar + F_UID] ||
      B[br + F_GID] !== A[ar + F_GID];
  }
  return (B[br + F_MODE] & MODE_MASK) !== (A[ar + F_MODE] & MODE_MASK) ||
    B[br + F_CTIME_NS] !== A[ar + F_CTIME_NS] ||
    B[br + F_CTIME_LO] !== A[ar + F_CTIME_LO] ||
    B[br + F_MTIME_NS] !== A[ar + F_MTIME_NS] ||
    B[br + F_MTIME_LO] !== A[ar + F_MTIME_LO] ||
    B[br + F_SIZE_LO] !== A[ar + F_SIZE_LO] ||
    B[br + F_INO_LO] !== A[ar + F_INO_LO] ||
    B[br + F_UID] !== A[ar + F_UID] ||
    B[br + F_GID] !== A[ar + F_GID] ||
    B[br + F_SIZE_HI] !== A[ar + F_SIZE_HI] ||
    B[br + F_MTIME_HI] !== A[ar + F_MTIME_HI] ||
    B[br + F_CTIME_HI] !== A[ar + F_CTIME_HI] ||
    B[br + F_INO_HI] !== A[ar + F_INO_HI];
}

const S_IFMT_MASK = 0o170000;
const S_IFDIR_BITS = 0o040000;

/**
 * Whether only the link count (and with it the ctime) of a non-directory moved: same inode, type
 * and permission bits, owner, size and mtime. Symlink targets and device numbers cannot change
 * without a new inode.
 */
function linkCountOnly(B: Uint32Array, br: number, A: Uint32Array, ar: number): boolean {
  return B[br + F_NLINK] !== A[ar + F_NLINK] &&
    (B[br + F_MODE] & MODE_MASK) === (A[ar + F_MODE] & MODE_MASK) &&
    B[br + F_INO_LO] === A[ar + F_INO_LO] && B[br + F_INO_HI] === A[ar + F_INO_HI] &&
    B[br + F_UID] === A[ar + F_UID] && B[br + F_GID] === A[ar + F_GID] &&
    B[br + F_SIZE_LO] === A[ar + F_SIZE_LO] && B[br + F_SIZE_HI] === A[ar + F_SIZE_HI] &&
    B[br + F_MTIME_LO] === A[ar + F_MTIME_LO] && B[br + F_MTIME_HI] === A[ar + F_MTIME_HI] &&
    B[br + F_MTIME_NS] === A[ar + F_MTIME_NS];
}

/** Whether `root/path` has extended attributes (unreadable counts as having them). */
function hasXattrs(root: string, path: string): boolean {
  try {
    return listXattrs(`${root}/${path}`).length > 0;
  } catch {
    return true;
  }
}

/** Same symlink target / device numbers (types already equal). */
function sameSpecial(
  before: TreeState,
  i: number,
  after: TreeState,
  j: number,
  type: number,
): boolean {
  if (type === S_IFLNK) return before.links.get(i) === after.links.get(j);
  if (type === S_IFCHR || type === S_IFBLK) {
    return before.rec[i * STRIDE + F_CHILD] === after.rec[j * STRIDE + F_CHILD] &&
      before.rec[i * STRIDE + F_NCHILD] === after.rec[j * STRIDE + F_NCHILD];
  }
  return true;
}

/**
 * Whether directory `j` of `after` replaced directory `i` of `before` as a whole, so that an
 * opaque marker is the right way to write it. Needs all of:
 * - the old directory had entries (else there is nothing to hide);
 * - it is another directory: another inode number, or another birth time (when both scans have
 *   one; without birth times every directory passes this test);
 * - none of its old entries is still there (same name, same inode number). This keeps a
 *   directory that overlayfs merely copied up (new birth time, same entries) from being
 *   rewritten whole, and makes the no-birth-time case safe: when every old entry is gone or
 *   replaced, the opaque form writes exactly the entries the per-file form would.
 */
function recreated(before: TreeState, i: number, after: TreeState, j: number): boolean {
  const B = before.rec;
  const A = after.rec;
  const br = i * STRIDE;
  const ar = j * STRIDE;
  const n = B[br + F_NCHILD];
  if (n === 0) return false;
  const sameInode = B[br + F_INO_LO] === A[ar + F_INO_LO] && B[br + F_INO_HI] === A[ar + F_INO_HI];
  if (
    sameInode && (B[br + F_MODE] & FLAG_BTIME) !== 0 && (A[ar + F_MODE] & FLAG_BTIME) !== 0 &&
    B[br + F_BTIME_LO] === A[ar + F_BTIME_LO] && B[br + F_BTIME_NS] === A[ar + F_BTIME_NS]
  ) {
    return false;
  }
  let x = B[br + F_CHILD];
  const xEnd = x + n;
  let y = A[ar + F_CHILD];
  const yEnd = y + A[ar + F_NCHILD];
  while (x < xEnd && y < yEnd) {
    const xr = x * STRIDE;
    const yr = y * STRIDE;
    const c = compareBytes(
      before.names,
      B[xr + F_NAME],
      (B[xr + F_MODE] >>> 16) & 0xff,
      after.names,
      A[yr + F_NAME],
      (A[yr + F_MODE] >>> 16) & 0xff,
    );
    if (c === 0) {
      if (B[xr + F_INO_LO] === A[yr + F_INO_LO] && B[xr + F_INO_HI] === A[yr + F_INO_HI]) {
        return false; // an old entry survived
      }
      x++;
      y++;
    } else if (c < 0) x++;
    else y++;
  }
  return true;
}
