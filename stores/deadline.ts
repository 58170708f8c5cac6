/**
 * The one way a bounded wait is written: cockatiel's aggressive timeout
 * around a promise that is already running. The work itself is not
 * cancelled (a driver call cannot be), so `onTimeout` can clean up after it.
 *
 * @module
 */
import { TaskCancelledError, timeout, TimeoutStrategy } from "cockatiel";

/**
 * `work`, or a rejection with `message` if `ms` pass first; `onTimeout` runs
 * then (to destroy a connection, release a resource).
 */
export async function deadline<T>(
  work: Promise<T>,
  ms: number,
  message: string,
  onTimeout?: () => void,
): Promise<T> {
  work.catch(() => {}); // it may settle after the deadline, unobserved
  try {
    return await timeout(ms, TimeoutStrategy.Aggressive).execute(() => work);
  } catch (e) {
    if (!(e instanceof TaskCancelledError)) throw e;
    onTimeout?.();
    throw new Error(message);
  }
}

/** Whether `work` settles (resolves or rejects) within `ms`; never rejects. */
export async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  try {
    await timeout(ms, TimeoutStrategy.Aggressive).execute(() => work.then(() => {}, () => {}));
    return true;
  } catch {
    return false;
  }
}
