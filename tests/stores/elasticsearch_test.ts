/**
 * Elasticsearch-specific behaviour against the real server of the matrix:
 * fuzzy full text next to the literal substring match, query-string syntax
 * searched and never parsed, the explicit mapping, the data as seen straight
 * through the client, deep offsets past the 10 000 result window, and failing
 * fast (without secrets) when nothing answers.
 */
import assert from "node:assert/strict";
import { Client } from "@elastic/elasticsearch";
import { newRecord } from "../../stores/records.ts";
import { INDEX, MAPPINGS, open, RESULT_WINDOW } from "../../stores/elasticsearch.ts";
import type { StoreConfig, WordRecord, WordStore } from "../../stores/types.ts";
import { storeTest } from "../support/env.ts";
import { uniqueTag } from "../support/gateway.ts";
import { assertRecreatedAfterDrop } from "../support/schema_loss.ts";

/** A raw client on the same server as `config`, with generous timeouts for test set-up. */
function rawClient(config: StoreConfig): Client {
  return new Client({ node: config.url, requestTimeout: 60_000, maxRetries: 0 });
}

async function withStore(config: StoreConfig, fn: (store: WordStore) => Promise<void>) {
  const store = await open(config);
  try {
    await fn(store);
  } finally {
    await store.close();
  }
}

const ids = (records: WordRecord[]) => records.map((r) => r.id);

/** `text` with the character at `i` replaced by one that is not there (a one-letter typo). */
function typo(text: string, i: number): string {
  const replacement = text[i] === "q" ? "z" : "q";
  return text.slice(0, i) + replacement + text.slice(i + 1);
}

storeTest(
  "ELASTICSEARCH",
  "a one-letter typo still finds the word and the definition",
  (c) =>
    withStore(c, async (store) => {
      const tag = uniqueTag();
      const inWord = newRecord(`serendipity${tag}`, "a happy accident");
      const inDefinition = newRecord("plain", `defined with onomatopoeia${tag} inside`);
      await store.add(inWord);
      await store.add(inDefinition);
      const wordTypo = typo(`serendipity${tag}`, 4);
      const defTypo = typo(`onomatopoeia${tag}`, 6);
      assert.ok(!inWord.word.toLowerCase().includes(wordTypo), "the needle is not a substring");
      assert.ok(
        ids(await store.list({ search: wordTypo, limit: 100, offset: 0 })).includes(
          inWord.id,
        ),
      );
      assert.ok(
        ids(await store.list({ search: defTypo, limit: 100, offset: 0 })).includes(
          inDefinition.id,
        ),
      );
      // Case does not matter for the full-text side either.
      assert.ok(
        ids(await store.list({ search: wordTypo.toUpperCase(), limit: 100, offset: 0 }))
          .includes(inWord.id),
      );
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
      for (const needle of ["BELIEV", `able${tag.slice(0, 4)}`, `${tag}école-ÉTÉ`, "e-é"]) {
        const got = await store.list({ search: needle, limit: 1000, offset: 0 });
        assert.ok(ids(got).includes(r.id), `search ${JSON.stringify(needle)} finds the record`);
      }
    }),
);

storeTest(
  "ELASTICSEARCH",
  "query-string syntax and wildcards are searched as text, never parsed",
  (c) =>
    withStore(c, async (store) => {
      const tag = uniqueTag();
      const syntax = newRecord(`${tag} syntax`, 'word:* OR definition:* AND "phrase" ~2 ^3');
      const quote = newRecord(`${tag} quote`, 'say "hi"');
      const star = newRecord(`${tag}a*c`, "a literal star");
      const decoy = newRecord(`${tag}abc`, "plain letters, no specials");
      for (const r of [syntax, quote, star, decoy]) await store.add(r);
      const search = async (needle: string) =>
        ids(await store.list({ search: needle, limit: 1000, offset: 0 }));

      // Query-string syntax finds the record that contains it, and only records
      // that contain its words; it does not match everything.
      const qs = await search("word:* OR definition:*");
      assert.ok(qs.includes(syntax.id));
      assert.ok(!qs.includes(decoy.id) && !qs.includes(quote.id) && !qs.includes(star.id));
      // A lone quote (a syntax error for query_string) neither fails nor matches everything.
      const quoted = await search('"');
      assert.ok(quoted.includes(quote.id) && quoted.includes(syntax.id));
      assert.ok(!quoted.includes(decoy.id) && !quoted.includes(star.id));
      // Wildcard characters are literal: `a*c` finds the star, not `abc`.
      const starred = await search(`${tag}a*c`);
      assert.ok(starred.includes(star.id) && !starred.includes(decoy.id));
      // `?` is no single-character wildcard either (the star record may still be a
      // full-text hit: both needles analyse to the same two tokens).
      assert.ok(!(await search(`${tag}a?c`)).includes(decoy.id));
      for (const needle of ["\\", "*", "?", "(", "[", "/", "~", "{", "<", ":"]) {
        await store.list({ search: needle, limit: 5, offset: 0 }); // must not fail
      }
    }),
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
    const records: WordRecord[] = [];
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
        assert.deepStrictEqual(await page(9_990, 20), records.slice(9_990, 10_010));
        assert.deepStrictEqual(await page(10_000, 1000), records.slice(10_000));
        assert.deepStrictEqual(await page(10_020, 3), records.slice(10_020, 10_023));
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
      const url = new URL(config.url);
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
  const url = new URL(config.url);
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
