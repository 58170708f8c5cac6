/**
 * A small inter-process lock file, so two runners started at the same time
 * (e.g. `up redis` and `up postgresql`) do not interleave certificate creation
 * or env-file updates.
 *
 * @module
 */
import { running } from "./ps.ts";

/**
 * Runs `fn` while holding the lock file `path`; a lock left by a dead process
 * is taken over, and so is one held longer than `waitMs`.
 */
export async function withLock<T>(
  path: string,
  fn: () => Promise<T>,
  waitMs = 120_000,
): Promise<T> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      const f = await Deno.open(path, { createNew: true, write: true });
      await f.write(new TextEncoder().encode(String(Deno.pid)));
      f.close();
      break;
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      const holder = Number(await Deno.readTextFile(path).catch(() => "0"));
      if ((holder && !running(holder)) || Date.now() > deadline) {
        await Deno.remove(path).catch(() => {});
      } else {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
  try {
    return await fn();
  } finally {
    await Deno.remove(path).catch(() => {});
  }
}
