/**
 * Content digests: validation (OCI digest grammar; sha256 and sha512 verified), hashing of bytes,
 * and streaming hashing and verification through `node:crypto`.
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { KanikoError } from "../errors.ts";

/** A digest string `algorithm:encoded`, e.g. `sha256:e3b0…`. */
export type Digest = string;

const DIGEST_RE = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const HEX_LENGTH: Record<string, number> = { sha256: 64, sha512: 128 };

/** The algorithms whose content we can verify. */
export type Algorithm = "sha256" | "sha512";

/** A parsed digest. */
export interface ParsedDigest {
  algorithm: string;
  encoded: string;
}

/** Parses and validates a digest; sha256 and sha512 must be lowercase hex of the right length. */
export function parseDigest(digest: string): ParsedDigest {
  if (!DIGEST_RE.test(digest)) {
    throw new KanikoError(`invalid digest "${truncate(digest)}"`, {
      hint: "a digest looks like sha256:<64 lowercase hex digits>",
    });
  }
  const i = digest.indexOf(":");
  const algorithm = digest.slice(0, i);
  const encoded = digest.slice(i + 1);
  const len = HEX_LENGTH[algorithm];
  if (len !== undefined && (encoded.length !== len || !/^[a-f0-9]+$/.test(encoded))) {
    throw new KanikoError(
      `invalid ${algorithm} digest "${truncate(digest)}": expected ${len} lowercase hex digits`,
    );
  }
  return { algorithm, encoded };
}

/** True when `digest` is a valid digest string (see {@link parseDigest}). */
export function isDigest(digest: string): boolean {
  try {
    parseDigest(digest);
    return true;
  } catch {
    return false;
  }
}

/** The algorithm of a digest we can verify, or an error naming the unsupported one. */
export function verifiableAlgorithm(digest: string): Algorithm {
  const { algorithm } = parseDigest(digest);
  if (algorithm === "sha256" || algorithm === "sha512") return algorithm;
  throw new KanikoError(`unsupported digest algorithm "${algorithm}" in ${truncate(digest)}`, {
    hint: "only sha256 and sha512 content can be verified",
  });
}

/** The digest of `bytes` (sha256 unless another algorithm is asked for). */
export function digestOf(
  bytes: Uint8Array | string,
  algorithm: Algorithm = "sha256",
): Digest {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}`;
}

/** A TransformStream that passes bytes through while hashing and counting them. */
export class HashingStream extends TransformStream<Uint8Array, Uint8Array> {
  #hash: Hash;
  #algorithm: Algorithm;
  #size = 0;
  #digest?: Digest;

  constructor(algorithm: Algorithm = "sha256") {
    const hash = createHash(algorithm);
    super({
      transform: (chunk, controller) => {
        hash.update(chunk);
        this.#size += chunk.byteLength;
        controller.enqueue(chunk);
      },
    });
    this.#hash = hash;
    this.#algorithm = algorithm;
  }

  /** Bytes seen so far. */
  get size(): number {
    return this.#size;
  }

  /** The digest of every byte that went through; call once the stream has ended. */
  digest(): Digest {
    this.#digest ??= `${this.#algorithm}:${this.#hash.digest("hex")}`;
    return this.#digest;
  }
}

/** What a verified stream must match. */
export interface Expected {
  digest: Digest;
  /** Expected byte count; -1 or undefined when unknown. */
  size?: number;
}

/**
 * Wraps `stream` so that it errors if the bytes do not match `expected` (size checked as bytes
 * arrive, digest at the end). `what` names the content in the error, e.g. `blob sha256:… from REG/REPO`.
 */
export function verifyStream(
  stream: ReadableStream<Uint8Array>,
  expected: Expected,
  what: string,
): ReadableStream<Uint8Array> {
  const algorithm = verifiableAlgorithm(expected.digest);
  const hash = createHash(algorithm);
  const wantSize = expected.size ?? -1;
  let size = 0;
  return stream.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        size += chunk.byteLength;
        if (wantSize >= 0 && size > wantSize) {
          throw new KanikoError(
            `${what}: received more than the expected ${wantSize} bytes`,
            { code: "SIZE_INVALID" },
          );
        }
        hash.update(chunk);
        controller.enqueue(chunk);
      },
      flush() {
        if (wantSize >= 0 && size !== wantSize) {
          throw new KanikoError(`${what}: received ${size} bytes, expected ${wantSize}`, {
            code: "SIZE_INVALID",
          });
        }
        const got = `${algorithm}:${hash.digest("hex")}`;
        if (got !== expected.digest) {
          throw new KanikoError(`${what}: content digest is ${got}, expected ${expected.digest}`, {
            code: "DIGEST_INVALID",
          });
        }
      },
    }),
  );
}

/** Checks bytes already in memory (manifests, configs) against a digest. */
export function verifyBytes(bytes: Uint8Array, digest: Digest, what: string): void {
  const got = digestOf(bytes, verifiableAlgorithm(digest));
  if (got !== digest) {
    throw new KanikoError(`${what}: content digest is ${got}, expected ${digest}`, {
      code: "DIGEST_INVALID",
    });
  }
}

function truncate(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
