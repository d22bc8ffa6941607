/**
 * Blob transfers: existence checks, verified streamed downloads (with `Range` for resuming),
 * cross-repository mounts, and uploads — monolithic (POST then PUT with a real Content-Length,
 * streamed) or chunked (PATCH with `Content-Range`, resuming from the registry's `Range` after a
 * 416 or a dropped connection). Whole uploads are retried by the push retry policy.
 * @module
 */
import { KanikoError } from "../errors.ts";
import { log } from "../log.ts";
import type { BlobSource, PutBlobOptions, PutBlobResult } from "../oci/content.ts";
import { verifyStream } from "../oci/digest.ts";
import type { Descriptor } from "../oci/schemas.ts";
import type { RegistryClient } from "./client.ts";
import { isRetryable, withRetry } from "./retry.ts";

/** Size of a blob in the repository, or undefined when it is absent. */
export async function headBlob(
  client: RegistryClient,
  repository: string,
  digest: string,
): Promise<number | undefined> {
  const res = await client.request({
    method: "HEAD",
    path: `/v2/${repository}/blobs/${digest}`,
    repositories: [repository],
    access: client.direction === "push" ? "push" : "pull",
    expect: [200, 404],
    what: `checking blob ${digest} in ${client.registry}/${repository}`,
  });
  await res.discard();
  return res.status === 200 ? Number(res.headers.get("content-length") ?? "0") : undefined;
}

/** Options for {@link openRegistryBlob}. */
export interface OpenOptions {
  offset?: number;
  signal?: AbortSignal;
  /** Verify the bytes against the descriptor (default true). */
  verify?: boolean;
}

/** Opens a blob as a stream; from offset 0 the bytes are verified against `desc`. */
export async function openRegistryBlob(
  client: RegistryClient,
  repository: string,
  desc: Descriptor,
  options: OpenOptions = {},
): Promise<ReadableStream<Uint8Array>> {
  const offset = options.offset ?? 0;
  const what = `blob ${desc.digest} from ${client.registry}/${repository}`;
  const res = await client.request({
    method: "GET",
    path: `/v2/${repository}/blobs/${desc.digest}`,
    repositories: [repository],
    access: "pull",
    headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
    expect: [200, 206],
    what: `fetching ${what}`,
    signal: options.signal,
  });
  const body = res.body ?? new ReadableStream({ start: (c) => c.close() });
  if (offset === 0) return options.verify === false ? body : verifyStream(body, desc, what);
  return res.status === 206 ? body : skipBytes(body, offset);
}

/** Uploads a blob unless the repository has it, mounting it from `mountFrom` when possible. */
export async function uploadBlob(
  client: RegistryClient,
  repository: string,
  desc: Descriptor,
  source: BlobSource,
  options: PutBlobOptions = {},
): Promise<PutBlobResult> {
  if (await headBlob(client, repository, desc.digest) !== undefined) return "exists";
  let session: string | undefined;
  const from = options.mountFrom;
  if (from && from.registry === client.registry && from.repository !== repository) {
    const mounted = await mount(client, repository, desc.digest, from.repository);
    if (mounted === true) return "mounted";
    session = mounted;
  }
  return await withRetry<PutBlobResult>(async (attempt) => {
    if (attempt > 0 && await headBlob(client, repository, desc.digest) !== undefined) {
      return "uploaded";
    }
    const location = session ?? await startUpload(client, repository);
    session = undefined;
    if (client.options.uploadChunkSize > 0) {
      await chunkedUpload(client, { repository, desc, source, location, options });
    } else {
      await monolithicUpload(client, { repository, desc, source, location, options });
    }
    return "uploaded";
  }, {
    ...client.retryOptions(),
    signal: options.signal,
    onRetry: (err, n, ms) =>
      log.info(`retrying upload of ${desc.digest} (${n}) in ${ms} ms: ${err.message}`),
  });
}

/** Tries a cross-repository mount: true when mounted, else an upload session URL (or undefined). */
async function mount(
  client: RegistryClient,
  repository: string,
  digest: string,
  fromRepository: string,
): Promise<true | string | undefined> {
  const attempt = async (withFrom: boolean) => {
    const query = `mount=${encodeURIComponent(digest)}` +
      (withFrom ? `&from=${encodeURIComponent(fromRepository)}` : "");
    const res = await client.request({
      method: "POST",
      path: `/v2/${repository}/blobs/uploads/?${query}`,
      repositories: withFrom ? [repository, fromRepository] : [repository],
      access: "push",
      headers: { "content-length": "0" },
      expect: [201, 202],
      what: `mounting blob ${digest} into ${client.registry}/${repository}`,
    });
    await res.discard();
    if (res.status === 201) return true as const;
    return locationOf(res.headers.get("location"), await client.baseUrl());
  };
  try {
    return await attempt(true);
  } catch (err) {
    if (isRetryable(err)) throw err;
    log.debug(`mount with from=${fromRepository} failed, trying without: ${String(err)}`);
    return await attempt(false).catch(() => undefined);
  }
}

async function startUpload(client: RegistryClient, repository: string): Promise<string> {
  const res = await client.request({
    method: "POST",
    path: `/v2/${repository}/blobs/uploads/`,
    repositories: [repository],
    access: "push",
    headers: { "content-length": "0" },
    expect: [202],
    what: `starting a blob upload to ${client.registry}/${repository}`,
  });
  await res.discard();
  const location = locationOf(res.headers.get("location"), await client.baseUrl());
  if (!location) {
    throw new KanikoError(
      `${client.registry} did not return an upload location for ${repository}`,
    );
  }
  return location;
}

interface UploadJob {
  repository: string;
  desc: Descriptor;
  source: BlobSource;
  location: string;
  options: PutBlobOptions;
}

// Uploads read their source unverified: the registry verifies the digest given with the
// closing PUT (`?digest=`) and refuses a mismatch, so hashing here too would only cost CPU.

async function monolithicUpload(client: RegistryClient, job: UploadJob): Promise<void> {
  const stream = counted(
    await job.source.openBlob(job.desc, { signal: job.options.signal, verify: false }),
    0,
    job,
  );
  const res = await client.request({
    method: "PUT",
    path: withDigest(job.location, job.desc.digest),
    repositories: [job.repository],
    access: "push",
    headers: { "content-type": "application/octet-stream" },
    body: { stream, length: job.desc.size },
    expect: [201, 204],
    what: `uploading blob ${job.desc.digest} to ${client.registry}/${job.repository}`,
    signal: job.options.signal,
  });
  await res.discard();
}

async function chunkedUpload(client: RegistryClient, job: UploadJob): Promise<void> {
  const size = job.desc.size;
  const chunkSize = client.options.uploadChunkSize;
  let location = job.location;
  let offset = 0;
  let resumes = 0;
  let reader = new ChunkReader(
    await job.source.openBlob(job.desc, { signal: job.options.signal, verify: false }),
  );
  try {
    while (offset < size) {
      const n = Math.min(chunkSize, size - offset);
      const stream = counted(reader.take(n), offset, job);
      let res;
      try {
        res = await client.request({
          method: "PATCH",
          path: location,
          repositories: [job.repository],
          access: "push",
          headers: {
            "content-type": "application/octet-stream",
            "content-range": `${offset}-${offset + n - 1}`,
          },
          body: { stream, length: n },
          expect: [201, 202, 204, 416],
          what: `uploading a chunk of ${job.desc.digest} to ${client.registry}/${job.repository}`,
          signal: job.options.signal,
        });
      } catch (err) {
        if (!isRetryable(err)) throw err;
        res = undefined;
      }
      const advanced = res && res.status !== 416 ? rangeEnd(res.headers.get("range")) : undefined;
      if (res) await res.discard();
      if (res && res.status !== 416 && advanced === offset + n - 1) {
        location = locationOf(res.headers.get("location"), location) ?? location;
        offset += n;
        continue;
      }
      if (++resumes > 3 + client.options.pushRetry) {
        throw new KanikoError(
          `uploading blob ${job.desc.digest} to ${client.registry}/${job.repository} failed: ` +
            `the upload could not be resumed after ${resumes - 1} attempts`,
          { code: "NETWORK" },
        );
      }
      const status = await uploadStatus(client, job.repository, location).catch(async (err) => {
        // distribution cancels a session whose data no longer matches its state (after a cut
        // PATCH): start a new session from byte 0
        if (!isLostSession(err)) throw err;
        log.info(`${client.registry} dropped the upload of ${job.desc.digest}; starting it again`);
        return { next: 0, location: await startUpload(client, job.repository) };
      });
      location = status.location;
      log.info(`resuming upload of ${job.desc.digest} at byte ${status.next}`);
      await reader.cancel();
      offset = status.next;
      reader = new ChunkReader(
        await job.source.openBlob(job.desc, { offset, signal: job.options.signal }),
      );
    }
  } finally {
    await reader.cancel();
  }
  const res = await client.request({
    method: "PUT",
    path: withDigest(location, job.desc.digest),
    repositories: [job.repository],
    access: "push",
    headers: { "content-length": "0" },
    expect: [201, 204],
    what: `completing the upload of ${job.desc.digest} to ${client.registry}/${job.repository}`,
  });
  await res.discard();
}

/** Asks the registry how much of an upload it holds (`GET location` → 204 + `Range`). */
async function uploadStatus(
  client: RegistryClient,
  repository: string,
  location: string,
): Promise<{ next: number; location: string }> {
  const res = await client.request({
    method: "GET",
    path: location,
    repositories: [repository],
    access: "push",
    expect: [204],
    what: `checking an upload to ${client.registry}/${repository}`,
  });
  await res.discard();
  const end = rangeEnd(res.headers.get("range"));
  return {
    // distribution answers `0-0` for an empty session as well as for one byte: read it as
    // empty (resending one byte costs at most a 416), never as "skip byte 0"
    next: end === undefined || end === 0 ? 0 : end + 1,
    location: locationOf(res.headers.get("location"), location) ?? location,
  };
}

/** True for the answers of a registry that no longer knows an upload session. */
function isLostSession(err: unknown): boolean {
  return err instanceof KanikoError &&
    ["BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID", "NOT_FOUND"].includes(err.code ?? "");
}

/** The inclusive end of a `Range: 0-N` (or `bytes=0-N`) header; undefined when absent. */
export function rangeEnd(range: string | null): number | undefined {
  const m = range?.match(/^(?:bytes=)?(\d+)-(\d+)$/);
  return m ? Number(m[2]) : undefined;
}

function locationOf(location: string | null, base: string): string | undefined {
  return location ? new URL(location, base).toString() : undefined;
}

function withDigest(location: string, digest: string): string {
  return `${location}${location.includes("?") ? "&" : "?"}digest=${encodeURIComponent(digest)}`;
}

function counted(
  stream: ReadableStream<Uint8Array>,
  start: number,
  job: UploadJob,
): ReadableStream<Uint8Array> {
  const report = job.options.onProgress;
  if (!report) return stream;
  let written = start;
  return stream.pipeThrough(
    new TransformStream({
      transform(chunk, controller) {
        written += chunk.byteLength;
        report(written);
        controller.enqueue(chunk);
      },
    }),
  );
}

function skipBytes(stream: ReadableStream<Uint8Array>, n: number): ReadableStream<Uint8Array> {
  let left = n;
  return stream.pipeThrough(
    new TransformStream({
      transform(chunk, controller) {
        if (left >= chunk.byteLength) {
          left -= chunk.byteLength;
          return;
        }
        controller.enqueue(left > 0 ? chunk.subarray(left) : chunk);
        left = 0;
      },
    }),
  );
}

/** Cuts a stream into consecutive sub-streams of exact lengths. */
export class ChunkReader {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #pending: Uint8Array | undefined;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  /** A stream of exactly `n` bytes; it errors if the source ends first. */
  take(n: number): ReadableStream<Uint8Array> {
    let left = n;
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        if (left === 0) return controller.close();
        let chunk = this.#pending;
        this.#pending = undefined;
        if (!chunk) {
          const { done, value } = await this.#reader.read();
          if (done) return controller.error(new KanikoError("blob source ended early"));
          chunk = value;
        }
        if (chunk.byteLength > left) {
          this.#pending = chunk.subarray(left);
          chunk = chunk.subarray(0, left);
        }
        left -= chunk.byteLength;
        controller.enqueue(chunk);
        if (left === 0) controller.close();
      },
    });
  }

  /** Releases the source. */
  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }
}
