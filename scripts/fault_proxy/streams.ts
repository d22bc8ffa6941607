/**
 * Body plumbing of the fault proxy's forwarders: writing a request body into a `node:http`
 * request up to a cut, counting and cutting a `fetch` request body, cutting a response body,
 * and reading `node:http` responses.
 * @module
 */
import type http from "node:http";

/** Writes a request body to a node request; `cut` when it stopped at `limit` bytes. */
export async function writeBody(
  body: ReadableStream<Uint8Array> | null,
  req: http.ClientRequest,
  limit: number | undefined,
  progress: (n: number) => void,
): Promise<"done" | "cut" | "failed"> {
  let written = 0;
  const write = (chunk: Uint8Array) =>
    new Promise<void>((resolve, reject) => {
      req.write(chunk, (err) => err ? reject(err) : resolve());
    });
  if (!body) {
    if (limit !== undefined) {
      req.flushHeaders();
      return "cut";
    }
    req.end();
    return "done";
  }
  try {
    for await (const chunk of body) {
      if (limit !== undefined && written + chunk.byteLength >= limit) {
        const part = chunk.subarray(0, limit - written);
        if (part.byteLength > 0) await write(part);
        else req.flushHeaders();
        progress(written = limit);
        return "cut";
      }
      await write(chunk);
      progress(written += chunk.byteLength);
    }
    if (limit !== undefined) {
      req.flushHeaders();
      return "cut"; // the body was shorter than the limit: cut at its end, before completion
    }
    req.end();
    return "done";
  } catch {
    return "failed";
  }
}

/**
 * Counts the bytes of a request body (`progress`); with a `limit`, passes that many bytes, then
 * calls `onCut` and holds the stream open (until the request is aborted).
 */
export function countRequestBody(
  limit: number | undefined,
  progress: (n: number) => void,
  onCut: () => void,
): TransformStream<Uint8Array, Uint8Array> {
  let forwarded = 0;
  return new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      if (limit !== undefined && forwarded + chunk.byteLength >= limit) {
        controller.enqueue(chunk.subarray(0, limit - forwarded));
        forwarded = limit;
        progress(forwarded);
        onCut();
        return new Promise<void>(() => {}); // hold the stream open until the abort
      }
      forwarded += chunk.byteLength;
      progress(forwarded);
      controller.enqueue(chunk);
    },
  });
}

/** Passes `limit` bytes of a response body, then calls `onCut` and stalls. */
export function cutResponse(
  limit: number,
  onCut: () => void,
): TransformStream<Uint8Array, Uint8Array> {
  let sent = 0;
  let done = false;
  return new TransformStream({
    transform(chunk, controller) {
      if (done) return;
      if (sent + chunk.byteLength >= limit) {
        if (limit > sent) controller.enqueue(chunk.subarray(0, limit - sent));
        sent = limit;
        done = true;
        onCut();
        return;
      }
      sent += chunk.byteLength;
      controller.enqueue(chunk);
    },
    flush() {
      if (!done) onCut(); // shorter than the limit: drop before the end is confirmed
      return new Promise<void>(() => {});
    },
  });
}

/** A node response's headers as name/value pairs (one pair per value of a repeated header). */
export function nodeHeaders(h: http.IncomingHttpHeaders): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [k, v] of Object.entries(h)) {
    if (Array.isArray(v)) v.forEach((x) => out.push([k, x]));
    else if (v !== undefined) out.push([k, String(v)]);
  }
  return out;
}

/** Reads and drops a node response; resolves when it ended, failed or closed. */
export function drainNode(res: http.IncomingMessage): Promise<void> {
  return new Promise((resolve) => {
    res.on("end", resolve);
    res.on("error", () => resolve());
    res.on("close", () => resolve());
    res.resume();
  });
}
