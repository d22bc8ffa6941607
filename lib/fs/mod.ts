/**
 * Filesystem metadata through libc: nanosecond `lstat`, `utimensat`, `lchown`, `mknod`, xattrs.
 * See {@link ./meta.ts}.
 * @module
 */
export * from "./meta.ts";
export { makedev } from "./ffi.ts";
