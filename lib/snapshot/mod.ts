/**
 * Snapshots: what a build step changed in a root directory, and the layer that carries it.
 *
 * - {@link scanTree} records every path's stat data (nanosecond times, birth time, inode,
 *   owner, mode, size, link target) in ~110 bytes a path; no file is read.
 * - {@link diffTrees} compares two scans: added, changed (metadata or content, told apart by
 *   nothing but stat data: ctime moves on every content or metadata change, and the scan waits out
 *   the timestamp tick so no change can hide in it), deleted (whiteouts), and re-created
 *   directories (opaque whiteouts).
 * - {@link layerEntries} turns changes into tar entries for `lib/layer` in a deterministic order,
 *   with real metadata, xattrs and hardlinks, streaming file bodies from disk;
 *   {@link entriesForPaths} does the same for COPY/ADD, which know what they wrote.
 *
 * Snapshot modes (`--snapshot-mode`): `full` and `redo` are this scan-and-diff; Kaniko's `time`
 * mode (mtime only) would miss chmod/chown, so it is treated as `redo` too. Content hashing, as
 * Kaniko's `full` mode does, is never needed: see `diff.ts` for the rules.
 * @module
 */
export {
  ignorePaths,
  type ScannedMeta,
  type ScanOptions,
  scanTree,
  scanTreeNoSettle,
  TreeState,
} from "./scan.ts";
export { type Change, diffStates, diffTrees } from "./diff.ts";
export {
  CHUNK,
  entriesForPaths,
  type EntriesOptions,
  layerEntries,
  OPAQUE_MARKER,
  SMALL_FILE,
  WHITEOUT_PREFIX,
} from "./entries.ts";
