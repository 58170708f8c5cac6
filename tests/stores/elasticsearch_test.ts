/**
 * Elasticsearch-specific behaviour against the real server of the matrix:
 * literal matches only (exact words found, no fuzzy extras), query-string
 * syntax searched and never parsed, older documents given their search key, deletions' tombstones hidden and purged, the explicit mapping, the data as seen straight
 * through the client, deep offsets past the 10 000 result window, and failing
 * fast (without secrets) when nothing answers.
 */
import assert from "node:assert/strict";
import { Client } from "@elastic/elasticsearch";
import { setTimeout as delay } from "node:timers/promises";
import { revisionOf } from "../../stores/edits.ts";
import { fold } from "../../stores/fold.ts";
import { newRecord } from "../../stores/records.ts";
import { assertFoundAfterBackfill, oldWords, unkeyed } from "../support/backfill.ts";
import { listed } from "../support/records.ts";
import { INDEX, MAPPINGS, open, RESULT_WINDOW } from "../../stores/elasticsearch.ts";
import type { NewWord, StoreConfig, WordRecord, WordStore } from "../../stores/types.ts";
import { firstUrl, storeTest } from "../support/env.ts";
import { uniqueTag } from "../support/gateway.ts";
import { assertRecreatedAfterDrop } from "../support/schema_loss.ts";
import { withOpened } from "../support/stores.ts";

/** A raw client on the same server as `config`, with generous timeouts for test set-up. */
function rawClient(config: StoreConfig): Client {
  return new Client({ nodes: config.url.split(","), requestTimeout: 60_000, maxRetries: 0 });
}

const withStore = <T>(config: StoreConfig, fn: (s: WordStore) => Promise<T>) =>
  withOpened(open, config, fn);

const ids = (records: WordRecord[]) => records.map((r) => r.id);

/** A page of `needle` (folded, as the gateway folds it) as ids. */
async function find(store: WordStore, needle: string, limit = 1000, offset = 0) {
  return ids(await store.list({ search: fold(needle), limit, offset }));
}

storeTest(
  "ELASTICSEARCH",
  "an exact match is found and pages hold only literal matches, oldest first (no fuzzy extras)",
  (c) =>
    withStore(c, async (store) => {
      const tag = uniqueTag();
      const words = Array.from({ length: 15 }, (_, i) => newRecord(`${tag}xword${i}`, "a word"));
      for (const r of words) await store.add(r);
      assert.deepStrictEqual(await find(store, `${tag}xword14`, 1), [words[14].id]);
      assert.deepStrictEqual(await find(store, `${tag}xword14`, 10), [words[14].id]);
      assert.deepStrictEqual(await find(store, `${tag}XWORD14`, 10), [words[14].id]);
      // xword1, xword10 … xword14: six matches, paged two at a time.
      const six = [1, 10, 11, 12, 13, 14].map((i) => words[i].id);
      assert.deepStrictEqual(await find(store, `${tag}xword1`, 10), six);
      for (const offset of [0, 2, 4]) {
        assert.deepStrictEqual(
          await find(store, `${tag}xword1`, 2, offset),
          six.slice(offset, offset + 2),
        );
      }
      // A one-letter typo finds nothing: typo tolerance is gone.
      assert.deepStrictEqual(await find(store, `${tag}xwird14`), []);
    }),
);

storeTest(
  "ELASTICSEARCH",
  "substrings inside a token are found literally, as every other store finds them",
  (c) =>
    withStore(c, async (store) => {
      const tag = uniqueTag();
      const r = newRecord(`Unbelievable${tag}`, `written as ${tag}ÉCOLE-été`);
      await store.add(r);
      for (const needle of [`BELIEVABLE${tag}`, `able${tag.slice(0, 4)}`, `${tag}école-ÉTÉ`]) {
        assert.deepStrictEqual(
          await find(store, needle),
          [r.id],
          `search ${JSON.stringify(needle)}`,
        );
      }
    }),
);

storeTest(
  "ELASTICSEARCH",
  "query-string syntax and wildcards are searched as text, never parsed",
  (c) =>
    withStore(c, async (store) => {
      const tag = uniqueTag();
      const syntax = newRecord(`${tag} syntax`, `${tag} word:* OR definition:* AND "phrase" ~2 ^3`);
      const quote = newRecord(`${tag} quote`, `${tag} say "hi"`);
      const star = newRecord(`${tag}a*c`, "a literal star");
      const decoy = newRecord(`${tag}abc`, "plain letters, no specials");
      for (const r of [syntax, quote, star, decoy]) await store.add(r);
      assert.deepStrictEqual(await find(store, `${tag} word:* OR definition:*`), [syntax.id]);
      assert.deepStrictEqual(await find(store, `${tag} say "`), [quote.id]);
      assert.deepStrictEqual(await find(store, `${tag}a*c`), [star.id]);
      assert.deepStrictEqual(await find(store, `${tag}a?c`), []);
      for (const needle of ["\\", "*", "?", "(", "[", "/", "~", "{", "<", ":"]) {
        await store.list({ search: needle, limit: 5, offset: 0 }); // must not fail
      }
    }),
);

storeTest(
  "ELASTICSEARCH",
  "documents indexed before search keys get their key when the store opens",
  async (config) => {
    const raw = rawClient(config);
    const tag = uniqueTag();
    const before = oldWords(tag);
    try {
      await withStore(config, () => Promise.resolve()); // the index, with today's mapping
      const res = await raw.bulk({
        operations: unkeyed(before).flatMap((r) => [{ index: { _index: INDEX, _id: r.id } }, r]),
        refresh: true,
      });
      assert.equal(res.errors, false);
      await withStore(config, (store) => assertFoundAfterBackfill(store, tag, before));
    } finally {
      await raw.bulk({
        operations: before.map((r) => ({ delete: { _index: INDEX, _id: r.id } })),
        refresh: true,
      }).catch(() => {});
      await raw.close();
    }
  },
);

storeTest("ELASTICSEARCH", "the words index has the explicit mapping", async (config) => {
  await withStore(config, async () => {
    const raw = rawClient(config);
    try {
      const res = await raw.indices.getMapping({ index: INDEX });
      assert.deepStrictEqual(res[INDEX].mappings, MAPPINGS);
      const settings = await raw.indices.getSettings({ index: INDEX });
      assert.equal(settings[INDEX].settings?.index?.number_of_shards, "1");
    } finally {
      await raw.close();
    }
  });
});

storeTest(
  "ELASTICSEARCH",
  "records are visible straight through the client: _id is the id, _source the record",
  async (config) => {
    await withStore(config, async (store) => {
      const raw = rawClient(config);
      try {
        const record = newRecord("raw-view ✓ 😀", 'def with "quotes", \\ and $ne and ‏עברית‏');
        await store.add(record);
        const doc = await raw.get<WordRecord>({ index: INDEX, id: record.id });
        assert.equal(doc._id, record.id);
        assert.deepStrictEqual(doc._source, record);
        // Visible to search at once: add waited for the refresh.
        const res = await raw.search<WordRecord>({
          index: INDEX,
          query: { term: { id: record.id } },
        });
        assert.deepStrictEqual(res.hits.hits.map((h) => h._source), [record]);
        // `createdAt` is indexed as a date.
        const dated = await raw.search({
          index: INDEX,
          query: {
            bool: {
              filter: [{ term: { id: record.id } }, {
                range: { createdAt: { gte: record.createdAt, lte: record.createdAt } },
              }],
            },
          },
        });
        assert.equal(dated.hits.hits.length, 1);
      } finally {
        await raw.close();
      }
    });
  },
);

storeTest(
  "ELASTICSEARCH",
  "offsets past the 10 000 result window page correctly (search_after)",
  async (config) => {
    const raw = rawClient(config);
    const tag = uniqueTag();
    const records: NewWord[] = [];
    for (let i = 0; i < RESULT_WINDOW + 25; i++) {
      records.push(newRecord(`deep ${i}`, `${tag} ${i}`));
    }
    const bulk = async (ops: object[]) => {
      const res = await raw.bulk({ operations: ops });
      assert.equal(res.errors, false);
    };
    try {
      for (let i = 0; i < records.length; i += 2_500) {
        const chunk = records.slice(i, i + 2_500);
        await bulk(chunk.flatMap((r) => [{ index: { _index: INDEX, _id: r.id } }, r]));
      }
      await raw.indices.refresh({ index: INDEX });
      await withStore(config, async (store) => {
        const page = (offset: number, limit: number) => store.list({ search: tag, limit, offset });
        assert.deepStrictEqual(await page(9_990, 20), listed(...records.slice(9_990, 10_010)));
        assert.deepStrictEqual(await page(10_000, 1000), listed(...records.slice(10_000)));
        assert.deepStrictEqual(await page(10_020, 3), listed(...records.slice(10_020, 10_023)));
        assert.deepStrictEqual(await page(RESULT_WINDOW + 25, 5), []);
        assert.deepStrictEqual(await page(25_000, 5), []);
      });
    } finally {
      for (let i = 0; i < records.length; i += 5_000) {
        const chunk = records.slice(i, i + 5_000);
        await bulk(chunk.map((r) => ({ delete: { _index: INDEX, _id: r.id } }))).catch(() => {});
      }
      await raw.indices.refresh({ index: INDEX }).catch(() => {});
      await raw.close();
    }
  },
);

storeTest("ELASTICSEARCH", "concurrent opens all succeed on the same index", async (config) => {
  const stores = await Promise.all(Array.from({ length: 4 }, () => open(config)));
  try {
    await Promise.all(stores.map((s) => s.ping()));
  } finally {
    await Promise.all(stores.map((s) => s.close()));
  }
});

storeTest(
  "ELASTICSEARCH",
  "open rejects quickly and without secrets when the server does not answer",
  async (config) => {
    // A port that accepts TCP connections but never answers HTTP.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const held: Deno.Conn[] = [];
    const accepting = (async () => {
      for await (const conn of listener) held.push(conn);
    })();
    try {
      const url = new URL(firstUrl(config));
      url.username = "elastic";
      url.password = "s3cret-pw-in-url";
      url.port = String((listener.addr as Deno.NetAddr).port);
      const t0 = performance.now();
      const err = await open({ ...config, url: url.toString(), connectTimeoutMs: 500 }).then(
        () => undefined,
        (e: Error) => e,
      );
      const elapsed = performance.now() - t0;
      if (!(err instanceof Error)) throw new Error("open must reject");
      assert.ok(elapsed < 1500, `open took ${Math.round(elapsed)} ms`);
      assert.ok(!String(err).includes("s3cret-pw-in-url"), "the error does not carry the password");
      assert.ok(!(err.stack ?? "").includes("s3cret-pw-in-url"));
    } finally {
      listener.close();
      for (const c of held) c.close();
      await accepting.catch(() => {});
    }
  },
);

storeTest("ELASTICSEARCH", "open rejects at once when nothing listens", async (config) => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const url = new URL(firstUrl(config));
  url.port = String(port);
  const t0 = performance.now();
  await assert.rejects(() => open({ ...config, url: url.toString() }));
  assert.ok(performance.now() - t0 < 1500);
});

storeTest(
  "ELASTICSEARCH",
  "a words index deleted under the running store is created again with its mapping without a restart",
  async (config) => {
    const raw = rawClient(config);
    try {
      await assertRecreatedAfterDrop("ELASTICSEARCH", () => open(config), async () => {
        await raw.indices.delete({ index: INDEX });
      });
      const mapping = await raw.indices.getMapping({ index: INDEX });
      assert.deepStrictEqual(mapping[INDEX].mappings, MAPPINGS);
    } finally {
      await raw.close();
    }
  },
);

storeTest(
  "ELASTICSEARCH",
  "an index with a mapping the store did not create makes it unavailable instead of serving wrong results",
  async (config) => {
    const raw = rawClient(config);
    try {
      await raw.indices.delete({ index: INDEX });
      // What an add racing the deletion would leave: Elasticsearch's own dynamic mapping.
      await raw.index({ index: INDEX, document: { id: "x", word: "w", definition: "d" } });
      await assert.rejects(open(config), /has a mapping this gateway did not create/);
    } finally {
      await raw.indices.delete({ index: INDEX }).catch(() => {});
      await raw.close();
    }
  },
);

storeTest(
  "ELASTICSEARCH",
  "a deletion purges the document, and a tombstone left behind is hidden from reads, pages, search and edits",
  async (config) => {
    await withStore(config, async (store) => {
      const raw = rawClient(config);
      try {
        const tag = uniqueTag();
        const gone = newRecord(`${tag}gone`, "deleted through the store");
        const left = newRecord(`${tag}left`, "a tombstone whose purge never ran");
        await store.add(gone);
        await store.add(left);
        assert.equal(await store.remove(gone.id, revisionOf(gone)), true);
        // The tombstone's own deletion runs after the call answers: wait for it.
        for (let i = 0; i < 50; i++) {
          const doc = await raw.get({ index: INDEX, id: gone.id }, { ignore: [404] });
          if (!doc.found) break;
          await delay(100);
        }
        assert.equal(
          (await raw.get({ index: INDEX, id: gone.id }, { ignore: [404] })).found,
          false,
        );
        // A tombstone as a gateway that died between the two steps leaves it.
        await raw.index({
          index: INDEX,
          id: left.id,
          document: { ...left, deleted: true, writeId: crypto.randomUUID() },
          refresh: true,
        });
        assert.equal(await store.get(left.id), undefined);
        assert.deepStrictEqual(await find(store, tag), []);
        // The page right after `gone` (ids are in insertion order) would start with `left`.
        const next = await store.list({ limit: 1, offset: 0, after: gone.id });
        assert.notDeepStrictEqual(ids(next), [left.id]);
        const edit = { ...left, definition: "edited", updatedAt: new Date().toISOString() };
        assert.equal(await store.replace(edit, revisionOf(left)), false);
        assert.equal(await store.remove(left.id, revisionOf(left)), false);
      } finally {
        await raw.close();
      }
    });
  },
);
