/**
 * When the event loop's current turn started handling signalling: performance.now() at the
 * first uWS callback (upgrade, open, message, close) since the last check phase. uWS's
 * callbacks run in libuv's poll phase, one after another for every socket the poll found
 * ready, so an upgrade handled late in a turn waited for every callback before it: a join
 * storm's queue is there, and a join timed from its own handler never shows it. The turn's
 * start is the earliest moment the process can know the upgrade had arrived (its bytes
 * were read in this turn's poll); the wait in the kernel before that poll is not visible to
 * it, and is at most the previous turn's length.
 */
export class LoopTurn {
  private start = -1;
  private readonly reset = (): void => {
    this.start = -1;
  };

  /** Marks the turn's start if this is its first callback; returns it. */
  mark(): number {
    if (this.start < 0) {
      this.start = performance.now();
      // Immediates run in the check phase, right after this turn's poll callbacks.
      setImmediate(this.reset);
    }
    return this.start;
  }
}
