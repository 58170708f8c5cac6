import { DatabaseSync } from "node:sqlite";
import { assertEquals } from "../support/assert.ts";
import { open } from "../../stores/sqlite.ts";
import { fold } from "../../stores/fold.ts";
import { newRecord } from "../../stores/records.ts";
import { assertFoundAfterBackfill, oldWords, unkeyed } from "../support/backfill.ts";
import { listed } from "../support/records.ts";

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
  assertEquals(await second.list({ limit: 10, offset: 0 }), listed(record));
  await second.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("SQLITE: search compares the folded key, so non-ASCII case and NFC/NFD match", async () => {
  const store = await open({ url: ":memory:", connectTimeoutMs: 1000, options: {} });
  const r = newRecord("ÅNGSTRÖM", "unit of length");
  await store.add(r);
  assertEquals(
    await store.list({ search: fold("a\u030angström"), limit: 10, offset: 0 }),
    listed(r),
  );
  await store.close();
});

Deno.test("SQLITE: a file from before search keys gets the column and every word its key", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/old.db`;
  const old = new DatabaseSync(path);
  old.exec(`CREATE TABLE words (id TEXT PRIMARY KEY, word TEXT NOT NULL,
    definition TEXT NOT NULL, created_at TEXT NOT NULL) WITHOUT ROWID`);
  const before = oldWords("sq");
  const insert = old.prepare("INSERT INTO words VALUES (?, ?, ?, ?)");
  for (const r of unkeyed(before)) insert.run(r.id, r.word, r.definition, r.createdAt);
  old.close();
  const store = await open({ url: path, connectTimeoutMs: 1000, options: {} });
  await assertFoundAfterBackfill(store, "sq", before);
  await store.close();
  await Deno.remove(dir, { recursive: true });
});
