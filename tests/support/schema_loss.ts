/**
 * The check the per-store tests share for a table, index or collection
 * dropped under a running gateway: the store, behind the same
 * {@linkcode ManagedStore} the gateway uses, notices it (a failed call or
 * health check pings, and the ping touches the table), reconnects and
 * creates it again, without a restart.
 *
 * @module
 */
import { assertEquals, assertOk } from "./assert.ts";
import { ManagedStore } from "../../stores/managed.ts";
import { newRecord } from "../../stores/records.ts";
import type { StoreName, WordStore } from "../../stores/types.ts";

/** How long the store may take to serve again after the drop. */
const RECOVERY_MS = 30_000;

/**
 * Opens the store with `open` behind a ManagedStore, adds a word, runs
 * `drop`, then polls as `/readyz` would until the store is healthy and an add
 * succeeds; asserts the new word is listed and the dropped one is gone with
 * its table.
 */
export async function assertRecreatedAfterDrop(
  name: StoreName,
  open: () => Promise<WordStore>,
  drop: () => Promise<void>,
): Promise<void> {
  const store = new ManagedStore({
    name,
    open,
    requestTimeoutMs: 5_000,
    connectTimeoutMs: 5_000,
    reconnectMaxMs: 500,
    secrets: [],
    log: () => {},
  });
  store.start();
  try {
    await store.whenReady(RECOVERY_MS);
    const tag = `drop${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
    const before = newRecord(`${tag} before`, "added before the drop");
    await store.add(before);
    assertEquals((await store.list({ search: tag, limit: 10, offset: 0 })).map((r) => r.id), [
      before.id,
    ]);

    await drop();

    const after = newRecord(`${tag} after`, "added after the drop");
    const deadline = Date.now() + RECOVERY_MS;
    let last = "";
    for (;;) {
      const health = await store.health();
      if (health.healthy) {
        try {
          await store.add(after);
          break;
        } catch (e) {
          last = (e as Error).message;
        }
      } else {
        last = health.message ?? "unhealthy";
      }
      assertOk(Date.now() < deadline, `${name} did not serve again after the drop: ${last}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    assertEquals((await store.list({ search: tag, limit: 10, offset: 0 })).map((r) => r.id), [
      after.id,
    ]);
    assertEquals((await store.health()).healthy, true);
  } finally {
    await store.close();
  }
}
