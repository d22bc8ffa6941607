/**
 * Small helpers shared by test files: expecting a {@link KanikoError}, capturing the log, and
 * reading a child process's output up to a marker.
 * @module
 */
import assert from "node:assert/strict";
import { KanikoError } from "../lib/errors.ts";
import { configureLog, resetLog } from "../lib/log.ts";

/** Awaits `p`, which must reject with a {@link KanikoError}; returns that error. */
export async function rejects(p: Promise<unknown>): Promise<KanikoError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof KanikoError, `expected a KanikoError, got ${e}`);
    return e;
  }
  assert.fail("expected a rejection");
}

/** Sends the log (level info, text, no color) to `lines` until `restore()` resets it. */
export function captureLog(): { lines: string[]; restore: () => void } {
  const lines: string[] = [];
  configureLog({ level: "info", format: "text" }, { write: (l) => lines.push(l), color: false });
  return { lines, restore: resetLog };
}

/**
 * Reads `stream` as text until what was read includes `marker` (or the stream ends), and
 * returns it. The stream stays locked (it is piped through a decoder).
 */
export async function readUntil(
  stream: ReadableStream<Uint8Array>,
  marker: string,
): Promise<string> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes(marker)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  reader.releaseLock();
  return text;
}
