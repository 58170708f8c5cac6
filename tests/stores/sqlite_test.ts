import { assertEquals } from "../support/assert.ts";
import { open } from "../../stores/sqlite.ts";
import { newRecord } from "../../stores/records.ts";

Deno.test("SQLITE: the database file and its directory are created on first use and keep words", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/nested/words.db`;
  const config = { url: path, connectTimeoutMs: 1000, options: {} };
  const first = await open(config);
  const record = newRecord("durable", "still there after reopening");
  await first.add(record);
  await first.close();
  assertEquals((await Deno.stat(path)).isFile, true);

  const second = await open(config);
  assertEquals(await second.list({ limit: 10, offset: 0 }), [record]);
  await second.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("SQLITE: search folds non-ASCII case, which SQLite's own lower() does not", async () => {
  const store = await open({ url: ":memory:", connectTimeoutMs: 1000, options: {} });
  const r = newRecord("ÅNGSTRÖM", "unit of length");
  await store.add(r);
  assertEquals(await store.list({ search: "ångström", limit: 10, offset: 0 }), [r]);
  await store.close();
});
