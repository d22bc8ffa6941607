/**
 * Who handles SIGINT and SIGTERM. By default the CLI ends the process at once (exit 130 / 143).
 * Code that must clean up after an interrupt — the k8s driver deletes the Jobs it created —
 * claims interrupts for as long as it runs: the CLI then lets the first signal through to it,
 * and only a second one ends the process at once.
 * @module
 */

let claims = 0;

/** Claims interrupts until the returned function is called (once). */
export function claimInterrupts(): () => void {
  claims++;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    claims--;
  };
}

/** Whether some code handles interrupts itself right now. */
export function interruptsClaimed(): boolean {
  return claims > 0;
}
