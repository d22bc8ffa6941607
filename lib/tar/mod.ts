/**
 * Our own streaming tar reader and writer (ustar + PAX with binary-safe xattrs, GNU long names,
 * base-256 numbers, sparse detection). See {@link readTar}, {@link TarWriter} and
 * {@link createTarStream}.
 * @module
 */
export {
  BLOCK_SIZE,
  type TarEntryHeader,
  type TarEntryType,
  type TarHeader,
  type TarSparseInfo,
} from "./header.ts";
export {
  encodePaxRecords,
  formatPaxTime,
  parsePaxRecords,
  parsePaxTime,
  type PaxRecord,
} from "./pax.ts";
export { readTar, type ReadTarOptions, type TarEntry } from "./reader.ts";
export {
  createTarStream,
  encodeEntry,
  encodeEntrySync,
  endOfArchive,
  type TarWriteEntry,
  TarWriter,
} from "./writer.ts";
