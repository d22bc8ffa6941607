/**
 * Root directories: applying image layers safely ({@link applyLayer}: whiteouts, opaque
 * whiteouts, hard links, symlinks, devices, owners, modes, times, xattrs; nothing lands outside
 * the root) and unpacking an image ({@link unpackImage}).
 * @module
 */
export { applyLayer, type ApplyOptions, WHITEOUT_OPAQUE, WHITEOUT_PREFIX } from "./apply.ts";
export { type LayerEvent, unpackImage, type UnpackOptions, type UnpackResult } from "./image.ts";
export {
  childPath,
  cleanPath,
  type CleanPathOptions,
  isWithin,
  joinRoot,
  MAX_SYMLINKS,
  type PathProblem,
  type ResolvedDir,
  resolveDir,
  type ResolveDirOptions,
  ResolveError,
  splitPath,
} from "./safe_path.ts";
