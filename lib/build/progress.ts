/**
 * What users see while a build runs: one line when a step starts
 * (`[stage 1/2] STEP 3/7: RUN make`), its output streamed, one line when it is done
 * (`… done in 2.1s`), as plain text or `--log-format=json` records.
 * @module
 */
import { formatStep } from "./describe.ts";
import type { PlannedInstruction, PlannedStage } from "../dockerfile/plan.ts";
import { log, logConfig } from "../log.ts";

/** Reports the steps of a build. */
export class Progress {
  #stages: number;
  #position = new Map<number, number>();
  #platform?: string;

  /**
   * `stages`: the indexes of the stages this build runs, in order. `platform`: set when several
   * platforms build at once, to start every line with `[linux/arm64] `.
   */
  constructor(stages: number[], platform?: string) {
    this.#stages = stages.length;
    this.#platform = platform;
    stages.forEach((s, i) => this.#position.set(s, i + 1));
  }

  #prefix(): string {
    return this.#platform ? `[${this.#platform}] ` : "";
  }

  #fields(fields: Record<string, unknown>): Record<string, unknown> {
    return this.#platform ? { platform: this.#platform, ...fields } : fields;
  }

  /** Runs one step, with its start and end lines. */
  async step<T>(
    stage: PlannedStage,
    index: number,
    count: number,
    step: PlannedInstruction,
    fn: () => Promise<T>,
  ): Promise<T> {
    const label =
      `${this.#prefix()}[stage ${
        this.#position.get(stage.index) ?? stage.index + 1
      }/${this.#stages}] ` +
      `STEP ${index + 1}/${count}`;
    const fields = logConfig().format === "json"
      ? this.#fields({ stage: stage.index, step: index + 1 })
      : {};
    log.info(`${label}: ${formatStep(step)}`, fields);
    const started = performance.now();
    const result = await fn();
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    log.info(`${label}: done in ${seconds}s`, fields);
    return result;
  }

  /** A line of a RUN step's output: as it is on a terminal, a record with `--log-format=json`. */
  output(line: string, stream: "stdout" | "stderr"): void {
    if (logConfig().format === "json") log.info(line, this.#fields({ stream }));
    else writeErr(this.#prefix() + line + "\n");
  }
}

const encoder = new TextEncoder();

function writeErr(text: string): void {
  const bytes = encoder.encode(text);
  for (let off = 0; off < bytes.length;) off += Deno.stderr.writeSync(bytes.subarray(off));
}
