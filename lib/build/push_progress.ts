/**
 * Push progress: on a terminal, one status line redrawn in place (`pushing REF: 3/5 layers,
 * 12.3/40.1 MiB`); otherwise (CI, files, `--log-format=json`) one plain log line per layer
 * when it is done.
 * @module
 */
import { formatBytes } from "../bytes.ts";
import { log, logConfig } from "../log.ts";
import type { PutBlobResult } from "../oci/content.ts";
import type { Descriptor } from "../oci/schemas.ts";

/** Tracks the blobs of one push. */
export class PushProgress {
  #target: string;
  #tty: boolean;
  #total: number;
  #count: number;
  #done = 0;
  #written = new Map<string, number>();
  #lastDraw = 0;

  /** `blobs`: every blob the push may move (layers and config). */
  constructor(target: string, blobs: Descriptor[]) {
    this.#target = target;
    this.#count = blobs.length;
    this.#total = blobs.reduce((n, d) => n + d.size, 0);
    this.#tty = Deno.stderr.isTerminal() && logConfig().format !== "json";
  }

  /** Bytes of a blob written so far. */
  progress(desc: Descriptor, written: number): void {
    this.#written.set(desc.digest, written);
    if (this.#tty && performance.now() - this.#lastDraw > 100) this.#draw();
  }

  /** A blob is done. */
  done(desc: Descriptor, result: PutBlobResult): void {
    this.#done++;
    this.#written.set(desc.digest, desc.size);
    if (this.#tty) this.#draw();
    else {log.info(
        `${this.#target}: ${desc.digest.slice(0, 19)} ${result} (${formatBytes(desc.size)})`,
      );}
  }

  /** Ends the status line. */
  finish(): void {
    if (this.#tty) Deno.stderr.writeSync(new TextEncoder().encode("\r\x1b[K"));
  }

  #draw(): void {
    this.#lastDraw = performance.now();
    let written = 0;
    for (const n of this.#written.values()) written += n;
    const line = `pushing ${this.#target}: ${this.#done}/${this.#count} blobs, ` +
      `${formatBytes(written)}/${formatBytes(this.#total)}`;
    Deno.stderr.writeSync(new TextEncoder().encode(`\r\x1b[K${line}`));
  }
}
