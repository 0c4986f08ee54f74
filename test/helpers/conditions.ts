/**
 * Waits for conditions on something that changes (a process's output, a stream, a
 * load's answers): each check runs again whenever the owner calls `changed()`, never on
 * a timer. A wait resolves once its check holds; it fails once `timeoutMs` pass, or
 * with what its check throws (a process that exited, say).
 */
export class Conditions {
  readonly #waiters = new Set<() => void>();

  changed(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }

  waitFor(check: () => boolean, timeoutMs: number, describe: () => string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const attempt = () => {
        let holds: boolean;
        try {
          holds = check();
        } catch (error) {
          cleanup();
          reject(error);
          return;
        }
        if (!holds) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${describe()}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.#waiters.delete(attempt);
      };
      this.#waiters.add(attempt);
      attempt();
    });
  }
}
