/**
 * The reconnection loop every network store runs in (stores/managed.ts),
 * against a database that refuses every connection: no database needed.
 */
import { assertEquals, assertOk } from "./support/assert.ts";
import { ManagedStore } from "../stores/managed.ts";

Deno.test(
  "a store that cannot connect logs its first three failed attempts, then one line per 30, with no secret",
  async () => {
    const lines: string[] = [];
    const secret = "postgres://u:hunter2-secret@db.invalid:5432/x";
    const store = new ManagedStore({
      name: "POSTGRESQL",
      open: () => Promise.reject(new Error(`connect ECONNREFUSED ${secret}`)),
      requestTimeoutMs: 500,
      connectTimeoutMs: 500,
      reconnectMaxMs: 20,
      secrets: [secret],
      log: (line) => lines.push(line),
    });
    store.start();
    const attempts = () => lines.map((l) => Number(l.match(/attempt (\d+),/)?.[1]));
    try {
      const deadline = Date.now() + 20_000;
      while (!attempts().includes(30) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      const health = await store.health();
      assertEquals(health.healthy, false);
      assertOk(/^connecting \(attempt \d+\)$/.test(health.message ?? ""), health.message);
    } finally {
      await store.close();
    }
    assertEquals(attempts().slice(0, 4), [1, 2, 3, 30], lines.join("\n"));
    assertOk(lines.every((l) => !l.includes("hunter2")), "the password is never logged");
  },
);
