/** A minimal typed event emitter that runs in browsers and Node alike. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyFn = (...args: any[]) => void;

export class Emitter<E extends Record<string, unknown[]>> {
  private readonly handlers = new Map<keyof E, Set<AnyFn>>();

  on<K extends keyof E>(event: K, fn: (...args: E[K]) => void): this {
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    set.add(fn as unknown as AnyFn);
    return this;
  }

  off<K extends keyof E>(event: K, fn: (...args: E[K]) => void): this {
    this.handlers.get(event)?.delete(fn as unknown as AnyFn);
    return this;
  }

  once<K extends keyof E>(event: K, fn: (...args: E[K]) => void): this {
    const wrap = (...args: E[K]): void => {
      this.off(event, wrap);
      fn(...args);
    };
    return this.on(event, wrap);
  }

  /** Resolves with the event's arguments the next time it fires. */
  next<K extends keyof E>(event: K, timeoutMs = 5000): Promise<E[K]> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off(event, done);
        reject(new Error(`timed out waiting for ${String(event)}`));
      }, timeoutMs);
      const done = (...args: E[K]): void => {
        clearTimeout(timer);
        this.off(event, done);
        resolve(args);
      };
      this.on(event, done);
    });
  }

  protected emit<K extends keyof E>(event: K, ...args: E[K]): void {
    const set = this.handlers.get(event);
    if (!set) return;
    for (const fn of [...set]) (fn as unknown as (...a: E[K]) => void)(...args);
  }
}
