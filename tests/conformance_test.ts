/**
 * One conformance suite, written once, run through the gateway against every
 * store: SQLite always, each network store on its real server (the local
 * matrix). Every test keeps to words carrying its own random tag, so runs
 * never see each other's data.
 */
import { assertEquals, assertOk } from "./support/assert.ts";
import { storeTest, tlsStoreConfig } from "./support/env.ts";
import { TestGateway, uniqueTag } from "./support/gateway.ts";
import {
  ADD,
  addWord as add,
  codeOf,
  connection,
  gatewayFor as gw,
  LIST,
  listWords as list,
  tryConnection,
  type Word,
} from "./support/words.ts";
import { STORE_NAMES, type StoreName } from "../stores/types.ts";

/** The hits must be exactly `expected`, in order: every store returns the literal matches only. */
function assertHits(got: Word[], expected: Word[]) {
  assertEquals(got.map((w) => w.id), expected.map((e) => e.id));
}

const TRICKY = [
  `O'Reilly "quoted" \`tick\``,
  "back\\slash \\\\ and \\n literal",
  `{"$gt": ""} $where: function() { return true }`,
  "Robert'); DROP TABLE words;--",
  "' OR 1=1 --",
  "😀👩🏽‍💻🏳️‍🌈 emoji",
  "e\u0301 combining e\u0301\u0301\u0323",
  "עברית العربية mixed RTL",
  "日本語テキスト",
  'word:* OR definition:* AND "phrase" ~2 ^3 [a TO z]',
  "%_.*?+[](){}|^$ all specials",
  "*\r\n*3\r\n$3\r\nSET\r\n",
];

for (const store of STORE_NAMES) {
  storeTest(
    store,
    "addWord round-trips the trimmed word and a following words includes it",
    async () => {
      const g = await gw(store);
      const tag = uniqueTag();
      const added = await add(g, store, `  ${tag} hello  `, `\t a greeting ${tag}\n`);
      assertEquals(added.word, `${tag} hello`);
      assertEquals(added.definition, `a greeting ${tag}`);
      assertEquals(added.store, store);
      assertOk(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(added.createdAt), added.createdAt);
      assertEquals(await list(g, store, tag), [added]);
    },
  );

  storeTest(store, "words lists oldest first, in addWord order", async () => {
    const g = await gw(store);
    const tag = uniqueTag();
    const added: Word[] = [];
    for (const w of ["zebra", "apple", "mango", "apple", "kiwi"]) {
      added.push(await add(g, store, `${w}-${tag}`, `fruit or not ${tag}`));
    }
    assertEquals(await list(g, store, tag), added);
  });

  storeTest(store, "limit and offset page through the ordered list", async () => {
    const g = await gw(store);
    const tag = uniqueTag();
    const added: Word[] = [];
    for (let i = 0; i < 5; i++) added.push(await add(g, store, `${tag}-${i}`, `page ${i}`));
    assertEquals(await list(g, store, tag, 2, 1), added.slice(1, 3));
    assertEquals(await list(g, store, tag, 1000, 4), added.slice(4));
    assertEquals(await list(g, store, tag, 10, 5), []);
    const all = await list(g, store, undefined, 3, 0);
    assertEquals(all.length, 3);
  });

  storeTest(store, "search is case-insensitive and matches word or definition", async () => {
    const g = await gw(store);
    const tag = uniqueTag();
    const a = await add(g, store, `ÉCOLE${tag}`, "a school");
    const b = await add(g, store, "plain", `defined by école${tag}`);
    await add(g, store, "other", `unrelated ${tag}x`.replace(tag, tag.slice(0, 6)));
    assertHits(await list(g, store, `école${tag}`), [a, b]);
    assertHits(await list(g, store, `ÉCOLE${tag.toUpperCase()}`), [a, b]);
    // NFD and NFC are the same text to search.
    assertHits(await list(g, store, `e\u0301cole${tag}`), [a, b]);
  });

  storeTest(
    store,
    "an exact word is found alone, and a page of matches is full and oldest first",
    async () => {
      const g = await gw(store);
      const tag = uniqueTag();
      const words: Word[] = [];
      for (let i = 0; i < 15; i++) words.push(await add(g, store, `${tag}xword${i}`, "a word"));
      assertHits(await list(g, store, `${tag}xword14`, 1), [words[14]]);
      assertHits(await list(g, store, `${tag}xword14`, 10), [words[14]]);
      const six = [1, 10, 11, 12, 13, 14].map((i) => words[i]);
      assertHits(await list(g, store, `${tag}XWORD1`, 10), six);
      for (const offset of [0, 2, 4]) {
        assertHits(await list(g, store, `${tag}xword1`, 2, offset), six.slice(offset, offset + 2));
      }
    },
  );

  storeTest(store, "search treats % _ . * \\ ? and quotes as literal characters", async () => {
    const g = await gw(store);
    const tag = uniqueTag();
    for (const special of ["%", "_", ".", "*", "\\", "?", "'", '"', "(", "["]) {
      const hit = await add(g, store, `${tag}${special}x`, "has the special character");
      const decoy = await add(g, store, `${tag}ax`, "has a letter instead");
      const got = await list(g, store, `${tag}${special}`);
      assertHits(got, [hit]);
      assertOk(!got.some((w) => w.id === decoy.id));
      await g.exec(LIST, { store, search: `${special}${special}` }); // must not error
    }
  });

  storeTest(store, "words and definitions of exactly 256 code points are kept whole", async () => {
    const g = await gw(store);
    const tag = uniqueTag();
    const word = tag + "😀".repeat(256 - tag.length);
    const definition = "é".normalize("NFD").repeat(128);
    const added = await add(g, store, word, definition);
    assertEquals([...added.word].length, 256);
    const [got] = await list(g, store, tag);
    assertEquals(got, added);
  });

  storeTest(
    store,
    "input over 256 code points, empty or with control characters writes nothing",
    async () => {
      const g = await gw(store);
      const tag = uniqueTag();
      const bad: [string, string][] = [
        [tag + "x".repeat(257 - tag.length), "too long word"],
        [tag, "y".repeat(257)],
        [tag, "   "],
        ["  ", `${tag} empty word`],
        [`${tag}\u0000nul`, "nul"],
        [`${tag}\nnewline`, "newline in word"],
        [tag, `bell\u0007 ${tag}`],
      ];
      for (const [word, definition] of bad) {
        const body = await g.exec(ADD, { store, word, definition });
        assertEquals(codeOf(body), "BAD_USER_INPUT", JSON.stringify(body));
      }
      assertEquals(await list(g, store, tag), []);
    },
  );

  storeTest(store, "Unicode and injection strings round-trip byte for byte", async () => {
    const g = await gw(store);
    const tag = uniqueTag();
    const added: Word[] = [];
    for (const s of TRICKY) {
      // deno-lint-ignore no-control-regex -- strips what validation would refuse
      const text = s.replace(/[\r\u0000-\u0008\u000B-\u001F]/g, "");
      added.push(
        await add(g, store, `${tag} ${text.replace(/\s/g, " ").slice(0, 200)}`, `${text} ${tag}`),
      );
    }
    const got = await list(g, store, tag);
    assertEquals(got.filter((w) => added.some((a) => a.id === w.id)), added);
    for (const a of added) {
      const needle = a.word.slice(tag.length + 1, tag.length + 12);
      const hits = await list(g, store, needle);
      assertOk(hits.some((w) => w.id === a.id), `search ${JSON.stringify(needle)} missed its word`);
    }
  });

  storeTest(store, "200 concurrent addWord calls are all stored exactly once", async () => {
    const g = await gw(store);
    const tag = uniqueTag();
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => add(g, store, `${tag}-${i}`, `concurrent ${i}`)),
    );
    const got = await list(g, store, tag, 1000);
    const ids = got.map((w) => w.id).filter((id) => results.some((r) => r.id === id));
    assertEquals(ids.length, 200);
    assertEquals(new Set(ids).size, 200);
    assertEquals(ids, [...ids].sort());
  });

  storeTest(
    store,
    "cursor pages walk the list oldest first, and words added before the cursor shift nothing",
    async () => {
      const g = await gw(store);
      const tag = uniqueTag();
      const added: Word[] = [];
      for (let i = 0; i < 7; i++) {
        added.push(await add(g, store, `${tag} cursor ${i}`, `page ${i}`));
      }
      const p1 = await connection(g, store, { search: tag, first: 3 });
      assertEquals(p1.edges.map((e) => e.node), added.slice(0, 3));
      assertEquals(p1.pageInfo.hasNextPage, true);
      assertEquals(p1.pageInfo.hasPreviousPage, false);
      assertEquals(p1.pageInfo.startCursor, p1.edges[0].cursor);
      assertEquals(p1.pageInfo.endCursor, p1.edges[2].cursor);
      // A word added now sorts after every cursor; none of them moves.
      const late = await add(g, store, `${tag} cursor late`, "added between two pages");
      const p2 = await connection(g, store, {
        search: tag,
        first: 3,
        after: p1.pageInfo.endCursor,
      });
      assertEquals(p2.edges.map((e) => e.node), added.slice(3, 6));
      assertEquals(p2.pageInfo.hasPreviousPage, true);
      const p3 = await connection(g, store, {
        search: tag,
        first: 3,
        after: p2.pageInfo.endCursor,
      });
      assertEquals(p3.edges.map((e) => e.node), [added[6], late]);
      assertEquals(p3.pageInfo.hasNextPage, false);
      const empty = await connection(g, store, { search: tag, after: p3.pageInfo.endCursor });
      assertEquals(empty.edges, []);
      assertEquals(empty.pageInfo.endCursor, null);
      // Without search the walk starts at the oldest word of the whole store.
      const all = await connection(g, store, { first: 2 });
      assertEquals(all.edges.length, 2);
      assertOk(all.edges[0].node.id < all.edges[1].node.id);
    },
  );

  storeTest(
    store,
    "a cursor that is malformed, from another store or from another search is refused",
    async () => {
      const g = await gw(store);
      const tag = uniqueTag();
      await add(g, store, `${tag} one`, "first");
      await add(g, store, `${tag} two`, "second");
      const { endCursor } = (await connection(g, store, { search: tag, first: 1 })).pageInfo;
      for (
        const [args, why] of [
          [{ search: tag, after: "not a cursor" }, "malformed"],
          [{ search: tag, after: endCursor!.slice(0, -4) }, "truncated"],
          [{ search: `${tag} o`, after: endCursor }, "another search"],
          [{ after: endCursor }, "no search"],
          [{ search: tag, first: 0 }, "first 0"],
          [{ search: tag, first: 1001 }, "first 1001"],
        ] as const
      ) {
        const { body } = await tryConnection(g, store, args);
        assertEquals(codeOf(body), "BAD_USER_INPUT", `${why}: ${JSON.stringify(body)}`);
      }
      if (store !== "SQLITE") {
        // The embedded store is always there to be asked with another store's cursor.
        const { body } = await tryConnection(g, "SQLITE", { search: tag, after: endCursor });
        assertEquals(codeOf(body), "BAD_USER_INPUT", "another store's cursor");
      }
    },
  );

  storeTest(store, "limit outside 1..1000 and negative offset are refused", async () => {
    const g = await gw(store);
    for (const [limit, offset] of [[0, 0], [1001, 0], [10, -1]]) {
      const body = await g.exec(LIST, { store, limit, offset });
      assertEquals(codeOf(body), "BAD_USER_INPUT");
    }
  });
}

/** Stores whose matrix server also accepts TLS; the test is required for these in CI. */
const TLS_STORES: StoreName[] = ["MONGODB", "POSTGRESQL", "MYSQL", "REDIS", "RABBITMQ", "SCYLLA"];

for (const store of TLS_STORES) {
  const tls = tlsStoreConfig(store);
  storeTest(
    store,
    "connects over TLS, verifying the server against the configured CA",
    async () => {
      const g = new TestGateway({ [store]: tls! });
      try {
        await g.registry.get(store).whenReady(60_000);
        const tag = uniqueTag();
        const added = await add(g, store, `${tag} secure`, "sent over TLS");
        assertEquals(await list(g, store, tag), [added]);
      } finally {
        await g.close();
      }
    },
    { needs: [tls] },
  );
}
