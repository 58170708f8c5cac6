/**
 * RabbitMQ-specific behaviour against the real broker of the matrix: words
 * live in the durable stream `words` and reading never consumes them, a
 * second instance rebuilds its list from the stream, the view on disk is
 * rebuilt, resumed and shared as it should be and keeps the gateway's memory
 * flat, edits and deletions are events in the stream that every view applies
 * alike, TLS is verified against the matrix CA (certificate and host name),
 * and a dead connection or a silent broker surfaces as a rejection, fast.
 *
 * Every test gets a view file of its own in a fresh temporary directory
 * ({@linkcode viewTest}), so tests share no view unless they mean to.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { DatabaseSync } from "node:sqlite";
import v8 from "node:v8";
import vm from "node:vm";
import amqp from "amqplib";
import { deleteRecord, nextRevision, revisionOf, updateRecord } from "../../stores/edits.ts";
import { newRecord, withSearchKey } from "../../stores/records.ts";
import { open } from "../../stores/rabbitmq.ts";
import { open as openSqlite } from "../../stores/sqlite.ts";
import { fold } from "../../stores/fold.ts";
import type { NewWord, StoreConfig, WordRecord, WordStore } from "../../stores/types.ts";
import { listed } from "../support/records.ts";
import { firstUrl, storeTest, tlsStoreConfig } from "../support/env.ts";
import { strangerCa } from "../support/tls.ts";
import { withOpened } from "../support/stores.ts";

const tls = tlsStoreConfig("RABBITMQ");

function tag(): string {
  return `rmq-${crypto.randomUUID().slice(0, 8)}`;
}

/** `config` with its view at `viewPath`. */
function withView(config: StoreConfig, viewPath: string): StoreConfig {
  return { ...config, options: { ...config.options, viewPath } };
}

/**
 * A RabbitMQ test whose configuration has a view file of its own, in a fresh
 * temporary directory (`dir`, removed afterwards).
 */
function viewTest(
  name: string,
  fn: (config: StoreConfig, dir: string) => Promise<void>,
  options: { needs?: (StoreConfig | undefined)[] } = {},
): void {
  storeTest("RABBITMQ", name, async (base) => {
    const dir = await Deno.makeTempDir({ prefix: "rabbitmq-view-" });
    try {
      await fn(withView(base, `${dir}/view.db`), dir);
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  }, options);
}

/**
 * Opens the store as the gateway's wrapper would: once more while a new view
 * is still catching up with a long stream (each attempt resumes where the
 * last one stopped).
 */
async function openStore(config: StoreConfig): Promise<WordStore> {
  for (let attempt = 1;; attempt++) {
    try {
      return await open(config);
    } catch (e) {
      if (attempt === 5 || !/did not catch up/.test(String(e))) throw e;
    }
  }
}

const withStore = <T>(config: StoreConfig, fn: (s: WordStore) => Promise<T>) =>
  withOpened(openStore, config, fn);

/** Reads every message of the `words` stream straight through amqplib, without the store. */
async function rawStream(config: StoreConfig): Promise<{ body: Buffer; type?: string }[]> {
  const conn = await amqp.connect(firstUrl(config), { timeout: 2000 });
  try {
    const ch = await conn.createChannel();
    const info = await ch.checkQueue("words");
    assert.equal(info.queue, "words");
    await ch.prefetch(1000);
    const marker = crypto.randomUUID();
    const pub = await conn.createConfirmChannel();
    await new Promise<void>((resolve, reject) =>
      pub.sendToQueue(
        "words",
        Buffer.alloc(0),
        { type: "marker", messageId: marker },
        (err) => err ? reject(err) : resolve(),
      )
    );
    const out: { body: Buffer; type?: string }[] = [];
    await new Promise<void>((resolve) => {
      ch.consume("words", (msg) => {
        if (!msg) return;
        ch.ack(msg);
        if (msg.properties.messageId === marker) resolve();
        else out.push({ body: msg.content, type: msg.properties.type });
      }, { noAck: false, arguments: { "x-stream-offset": "first" } });
    });
    return out;
  } finally {
    await conn.close().catch(() => {});
  }
}

/** A TCP relay from 127.0.0.9:<random> (an address the matrix certificate does not name) to `target`, whose connections can be cut. */
function relay(target: number) {
  const listener = Deno.listen({ hostname: "127.0.0.9", port: 0 });
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const inbound of listener) {
      conns.push(inbound);
      const outbound = await Deno.connect({ hostname: "127.0.0.1", port: target });
      conns.push(outbound);
      inbound.readable.pipeTo(outbound.writable).catch(() => {});
      outbound.readable.pipeTo(inbound.writable).catch(() => {});
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    cut() {
      for (const c of conns.splice(0)) {
        try {
          c.close();
        } catch {
          // already closed by a pipe
        }
      }
    },
    async stop() {
      listener.close();
      this.cut();
      await accepting;
    },
  };
}

function viaRelay(config: StoreConfig, port: number): StoreConfig {
  const url = new URL(firstUrl(config));
  url.hostname = "127.0.0.9";
  url.port = String(port);
  return { ...config, url: url.toString() };
}

/** Publishes `records` as word messages straight through amqplib, as another writer would. */
async function publishRaw(config: StoreConfig, records: Iterable<WordRecord>): Promise<void> {
  const conn = await amqp.connect(firstUrl(config), { timeout: 2000 });
  try {
    const pub = await conn.createConfirmChannel();
    let unconfirmed = 0;
    for (const { id, word, definition, createdAt } of records) {
      pub.sendToQueue(
        "words",
        Buffer.from(JSON.stringify({ id, word, definition, createdAt })),
        { type: "word", messageId: id, persistent: true },
      );
      if (++unconfirmed === 1000) {
        await pub.waitForConfirms();
        unconfirmed = 0;
      }
    }
    await pub.waitForConfirms();
  } finally {
    await conn.close().catch(() => {});
  }
}

/**
 * Deletes the `words` stream, as an operator would behind the gateway's back,
 * and with `recreate` declares it again, empty.
 */
async function deleteStream(config: StoreConfig, recreate = false): Promise<void> {
  const conn = await amqp.connect(firstUrl(config), { timeout: 2000 });
  try {
    const ch = await conn.createChannel();
    await ch.deleteQueue("words");
    if (recreate) {
      await ch.assertQueue("words", { durable: true, arguments: { "x-queue-type": "stream" } });
    }
  } finally {
    await conn.close().catch(() => {});
  }
}

/** `count` words tagged `t`, each word and definition as long as validation allows, made lazily. */
function* words(t: string, count: number): Generator<NewWord> {
  for (let i = 0; i < count; i++) {
    yield newRecord(`${t} ${i} `.padEnd(256, "w"), `definition ${i} of ${t} `.padEnd(256, "d"));
  }
}

/** Every word `store` lists (those matching `search`), walked by cursor, 1000 a page. */
async function listAll(store: WordStore, search?: string): Promise<WordRecord[]> {
  const all: WordRecord[] = [];
  for (;;) {
    const page = await store.list({ search, limit: 1000, offset: 0, after: all.at(-1)?.id });
    all.push(...page);
    if (page.length < 1000) return all;
  }
}

/** Deletes the view file at `path` from disk, with its WAL files if any. */
async function removeView(path: string): Promise<void> {
  for (const f of [path, `${path}-wal`, `${path}-shm`]) await Deno.remove(f).catch(() => {});
}

/** The stream position stored in the view file at `path`, read with SQLite directly. */
function storedPosition(path: string): Record<string, unknown> {
  const db = new DatabaseSync(path);
  try {
    const row = db.prepare("SELECT head_offset, head_id, last_offset, last_id FROM view_position")
      .get();
    assert(row, `no position in ${path}`);
    return { ...row };
  } finally {
    db.close();
  }
}

/** `record` edited to `word` and `definition`, one revision later, with its search key. */
function edited(record: WordRecord, word: string, definition: string): NewWord {
  const { id, createdAt } = record;
  return withSearchKey({
    id,
    word,
    definition,
    createdAt,
    updatedAt: nextRevision(revisionOf(record)),
  });
}

/** A well-formed UUIDv7 no store holds. */
const UNKNOWN_ID = "01890000-0000-7000-8000-000000000000";

/**
 * Returns once `store`'s view has applied everything published before the
 * call: a deletion of a word that never existed changes nothing, and
 * `remove` resolves once the view applied it, after all that came before.
 */
async function caughtUp(store: WordStore): Promise<void> {
  assert.equal(await store.remove(UNKNOWN_ID, "1970-01-01T00:00:00.000Z"), false);
}

/** The median time of `runs` sequential calls, in ms. */
async function p50(fn: () => Promise<unknown>, runs = 200): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  return ms.sort((a, b) => a - b)[runs >> 1];
}

/** This process's live heap (after a full collection) and resident set, in MiB. */
function memory(): { heapMiB: number; rssMiB: number } {
  v8.setFlagsFromString("--expose-gc");
  const gc = vm.runInNewContext("gc") as () => void;
  gc();
  gc();
  const m = Deno.memoryUsage();
  return { heapMiB: m.heapUsed / 2 ** 20, rssMiB: m.rss / 2 ** 20 };
}

viewTest("reading the list twice gives the same list: nothing is consumed", async (config) => {
  await withStore(config, async (store) => {
    const t = tag();
    const records = [newRecord(`${t} one`, "first"), newRecord(`${t} two`, "second")];
    for (const r of records) await store.add(r);
    const first = await store.list({ search: t, limit: 10, offset: 0 });
    const second = await store.list({ search: t, limit: 10, offset: 0 });
    assert.deepStrictEqual(first, listed(...records));
    assert.deepStrictEqual(second, listed(...records));
  });
  // And a raw reader of the stream still finds them afterwards.
  const raw = await rawStream(config);
  assert(raw.length >= 2);
});

viewTest(
  "a word added by one instance is listed by a second, freshly opened instance",
  async (config, dir) => {
    const t = tag();
    const record = newRecord(`${t} 😀 e\u0301 עברית`, `O'Reilly "q" \\ $gt %_ .* ${t}`);
    await withStore(config, (a) => a.add(record));
    // `b` has a view file of its own: whatever it lists, it read from the stream.
    await withStore(withView(config, `${dir}/second.db`), async (b) => {
      assert.deepStrictEqual(await b.list({ search: t, limit: 10, offset: 0 }), listed(record));
      assert.deepStrictEqual(
        await b.list({ search: fold("E\u0301 עבר"), limit: 1000, offset: 0 }).then((l) =>
          l.filter((r) => r.id === record.id)
        ),
        listed(record),
      );
    });
  },
);

viewTest(
  "each word is one persistent JSON message in the durable words stream, byte for byte",
  async (config) => {
    const record = newRecord(`${tag()} raw ✓`, 'def "quotes" \\ \u200f‏עברית‏ 👩🏽‍💻');
    await withStore(config, (s) => s.add(record));
    const raw = await rawStream(config);
    const mine = raw.filter((m) => m.type === "word").map((m) =>
      JSON.parse(m.body.toString("utf8"))
    )
      .filter((r: WordRecord) => r.id === record.id);
    assert.deepStrictEqual(mine, listed(record));
    // Declaring it as anything but a stream is refused: it really is a stream queue.
    const conn = await amqp.connect(firstUrl(config), { timeout: 2000 });
    try {
      conn.on("error", () => {});
      const ch = await conn.createChannel();
      ch.on("error", () => {});
      await assert.rejects(
        ch.assertQueue("words", { durable: true, arguments: { "x-queue-type": "classic" } }),
        /PRECONDITION_FAILED/,
      );
    } finally {
      await conn.close().catch(() => {});
    }
  },
);

viewTest("concurrent adds are all listed in id order, paged and searched", async (config) => {
  await withStore(config, async (store) => {
    const t = tag();
    const records: NewWord[] = [];
    for (let i = 0; i < 150; i++) {
      records.push(newRecord(`${t}-${i}`, i % 3 === 0 ? `has NeEdLe ${i}` : `plain ${i}`));
    }
    await Promise.all(records.map((r) => store.add(r)));
    assert.deepStrictEqual(
      await store.list({ search: t, limit: 1000, offset: 0 }),
      listed(...records),
    );
    const needles = records.filter((_, i) => i % 3 === 0);
    const all = await listAll(store, "needle");
    assert.deepStrictEqual(all.filter((r) => r.word.startsWith(t)), listed(...needles));
    assert.deepStrictEqual(
      await store.list({ search: t, limit: 7, offset: 140 }),
      listed(...records.slice(140, 147)),
    );
    assert.deepStrictEqual(await store.list({ search: `${t}-1.`, limit: 5, offset: 0 }), []);
  });
});

viewTest(
  "reconnecting resumes the view where it stopped and sees what was published meanwhile",
  async (config) => {
    const t = tag();
    const before = newRecord(`${t} before`, "seen by the first connection");
    const meanwhile = newRecord(`${t} meanwhile`, "published while the store was closed");
    await withStore(config, (s) => s.add(before));
    await publishRaw(config, [meanwhile]);
    await withStore(config, async (s) => {
      assert.deepStrictEqual(
        await s.list({ search: t, limit: 10, offset: 0 }),
        listed(before, meanwhile),
      );
    });
  },
);

viewTest(
  "a stream deleted and recreated behind the store's back is read again, not mixed with the old one",
  async (config) => {
    const t = tag();
    const old = newRecord(`${t} old`, "in the stream that gets deleted");
    await withStore(config, (s) => s.add(old));
    await deleteStream(config);
    const fresh = newRecord(`${t} fresh`, "in the new stream");
    await withStore(config, async (s) => {
      await s.add(fresh);
      assert.deepStrictEqual(await s.list({ search: t, limit: 10, offset: 0 }), listed(fresh));
    });
  },
);

viewTest("amqps with the matrix CA connects, verifies and round-trips", async (config) => {
  await withStore(withView(tls!, config.options.viewPath), async (store) => {
    await store.ping();
    const record = newRecord(`${tag()} tls`, "written over TLS 🔒");
    await store.add(record);
    assert.deepStrictEqual(
      await store.list({ search: fold(record.word), limit: 5, offset: 0 }),
      listed(record),
    );
  });
}, { needs: [tls] });

viewTest(
  "TLS is refused for a foreign CA, no CA, or the wrong host name",
  async (config) => {
    const secure = withView(tls!, config.options.viewPath);
    await assert.rejects(open({ ...secure, caCert: await strangerCa() }));
    // Without a CA the system trust store is used, which does not know the matrix CA.
    await assert.rejects(open({ ...secure, caCert: undefined }));
    // A CA with a plain amqp:// URL is a configuration error, not a silent downgrade.
    await assert.rejects(
      open({ ...secure, url: secure.url.replace(/^amqps:/, "amqp:") }),
      /amqps/,
    );
    // Same broker and CA, but reached as 127.0.0.9, which the certificate does not name.
    const r = relay(Number(new URL(firstUrl(secure)).port));
    try {
      const err = await open(viaRelay(secure, r.port)).then(() => undefined, (e: Error) => e);
      assert(err instanceof Error, "open must reject a certificate for another host");
      assert.match(
        `${err.message} ${(err as { code?: string }).code}`,
        /altname|ERR_TLS_CERT_ALTNAME_INVALID/i,
      );
    } finally {
      await r.stop();
    }
  },
  { needs: [tls] },
);

viewTest("a cut connection rejects add, list and ping at once", async (config) => {
  const r = relay(Number(new URL(firstUrl(config)).port));
  const store = await open(viaRelay(config, r.port));
  try {
    await store.ping();
    r.cut();
    const t0 = performance.now();
    await assert.rejects(store.add(newRecord(tag(), "after the cut")));
    await assert.rejects(store.list({ limit: 1, offset: 0 }));
    await assert.rejects(store.ping());
    assert(performance.now() - t0 < 1500, "the outage surfaces within 1.5 s");
  } finally {
    await store.close();
    await r.stop();
  }
});

viewTest(
  "open rejects quickly and without secrets when nothing or a silent peer answers",
  async (config) => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const held: Deno.Conn[] = [];
    const accepting = (async () => {
      for await (const conn of listener) held.push(conn);
    })();
    try {
      const url = new URL(firstUrl(config));
      url.port = String((listener.addr as Deno.NetAddr).port);
      const t0 = performance.now();
      const err = await open({ ...config, url: url.toString(), connectTimeoutMs: 500 }).then(
        () => undefined,
        (e: Error) => e,
      );
      assert(err instanceof Error, "open must reject");
      assert(performance.now() - t0 < 1500, `open took ${Math.round(performance.now() - t0)} ms`);
      assert(!err.message.includes(decodeURIComponent(url.password)), "no password in the error");
      const wrongPass = new URL(firstUrl(config));
      wrongPass.password = "not-the-password";
      const denied = await open({ ...config, url: wrongPass.toString() }).then(
        () => undefined,
        (e: Error) => e,
      );
      assert(denied instanceof Error, "a wrong password is refused");
      assert(!denied.message.includes("not-the-password"));
    } finally {
      listener.close();
      for (const c of held) c.close();
      await accepting.catch(() => {});
    }
  },
);

viewTest("close never rejects, even twice, and later calls reject", async (config) => {
  const store = await openStore(config);
  await store.close();
  await store.close();
  await assert.rejects(store.list({ limit: 1, offset: 0 }));
  await assert.rejects(store.add(newRecord(tag(), "closed")));
});

viewTest(
  "a view path that cannot be opened, or a file that is no view, fails open clearly and is left alone",
  async (config, dir) => {
    const file = `${dir}/plain-file`;
    await Deno.writeTextFile(file, "a file, not a directory");
    const t0 = performance.now();
    const err = await open(withView(config, `${file}/view.db`)).then(() => undefined, (e) => e);
    assert(err instanceof Error, "open must reject");
    assert.match(err.message, /cannot open the view at RABBITMQ_VIEW_PATH=.*plain-file\/view\.db/);
    assert(performance.now() - t0 < 1500, `open took ${Math.round(performance.now() - t0)} ms`);
    // The embedded store's file (words, no stream position) is never taken for a view, nor emptied.
    const embedded = { url: `${dir}/words.db`, connectTimeoutMs: 1000, options: {} };
    const record = newRecord(`${tag()} embedded`, "must survive");
    const sqlite = await openSqlite(embedded);
    await sqlite.add(record);
    await sqlite.close();
    await assert.rejects(open(withView(config, embedded.url)), /not a view/);
    const again = await openSqlite(embedded);
    try {
      assert.deepStrictEqual(await again.list({ limit: 10, offset: 0 }), listed(record));
    } finally {
      await again.close();
    }
  },
);

viewTest(
  "a view deleted from disk is rebuilt from the stream and lists exactly what it did before",
  async (config) => {
    const path = config.options.viewPath;
    const t = tag();
    const records = Array.from({ length: 300 }, (_, i) => newRecord(`${t} ${i}`, `word ${i}`));
    await withStore(config, (s) => Promise.all(records.slice(0, 150).map((r) => s.add(r))));
    await publishRaw(config, records.slice(150));
    const before = await withStore(config, async (s) => {
      assert.deepStrictEqual(await listAll(s, t), listed(...records));
      return await listAll(s);
    });
    await removeView(path);
    await withStore(config, async (s) => {
      assert.deepStrictEqual(await listAll(s), before);
      assert.deepStrictEqual(await listAll(s, t), listed(...records));
    });
    assert((await Deno.stat(path)).isFile);
  },
);

viewTest(
  "a view behind the stream catches up from its stored position, without reading it all again",
  async (config) => {
    const path = config.options.viewPath;
    const t = tag();
    const first = newRecord(`${t} first`, "added through the store");
    await withStore(config, (s) => s.add(first));
    const stopped = storedPosition(path);
    // A word only the view file holds: a resumed view keeps it, a rebuilt one would not.
    const canary = newRecord(`${t} canary`, "only in the view file");
    const db = new DatabaseSync(path);
    try {
      db.prepare(
        "INSERT INTO words (id, word, definition, created_at, search_key) VALUES (?, ?, ?, ?, ?)",
      )
        .run(canary.id, canary.word, canary.definition, canary.createdAt, canary.searchKey);
    } finally {
      db.close();
    }
    const meanwhile = Array.from(
      { length: 2500 },
      (_, i) => newRecord(`${t} meanwhile ${i}`, "published while the store was closed"),
    );
    await publishRaw(config, meanwhile);
    await withStore(config, async (s) => {
      assert.deepStrictEqual(await listAll(s, t), listed(first, canary, ...meanwhile));
    });
    const resumed = storedPosition(path);
    assert.equal(resumed.head_id, stopped.head_id);
    assert(Number(resumed.last_offset) >= Number(stopped.last_offset) + meanwhile.length);
  },
);

viewTest(
  "a stream deleted and recreated under an open store makes its view rebuild",
  async (config) => {
    const path = config.options.viewPath;
    const t = tag();
    const old = newRecord(`${t} old`, "in the stream that gets deleted");
    const store = await openStore(config);
    try {
      await store.add(old);
      await deleteStream(config);
      // The broker cancels the store's consumer: the store fails, as a lost connection does.
      const t0 = performance.now();
      while (await store.ping().then(() => true, () => false)) {
        await new Promise((r) => setTimeout(r, 50));
      }
      const ms = Math.round(performance.now() - t0);
      assert(ms < 3000, `the store noticed the deleted stream after ${ms} ms`);
    } finally {
      await store.close();
    }
    const built = storedPosition(path);
    const fresh = newRecord(`${t} fresh`, "in the new stream");
    await withStore(config, async (s) => {
      await s.add(fresh);
      assert.deepStrictEqual(await listAll(s, t), listed(fresh));
    });
    const rebuilt = storedPosition(path);
    assert.notEqual(rebuilt.head_id, built.head_id, "the view records the new stream's head");
  },
);

viewTest(
  "two stores on one view file (two processes' worth) add and list correctly at once",
  async (config) => {
    const t = tag();
    const fromA: NewWord[] = [];
    const fromB = Array.from({ length: 200 }, (_, i) => newRecord(`${t} b${i}`, "added by b"));
    const a = await openStore(config);
    let b: WordStore | undefined;
    try {
      // `b` opens while `a` keeps moving the view: it starts from wherever `a` has taken it,
      // which may be past the messages `b` published while opening.
      const opening = openStore(config).then((s) => b = s);
      while (!b) {
        const batch = Array.from({ length: 20 }, () => newRecord(`${t} a${fromA.length}`, "by a"));
        fromA.push(...batch);
        await Promise.race([Promise.all(batch.map((r) => a.add(r))), opening]);
      }
      await Promise.all([...fromA.map((r) => a.add(r)), ...fromB.map((r) => b!.add(r))]);
      const all = listed(...[...fromA, ...fromB].sort((x, y) => x.id < y.id ? -1 : 1));
      // Each one's adds waited for its own consumer; both consumers wrote the one file.
      assert.deepStrictEqual(await listAll(a, t), all);
      assert.deepStrictEqual(await listAll(b, t), all);
      assert.deepStrictEqual(
        await a.list({ search: fold(`${t} B1`), limit: 1000, offset: 0 }),
        listed(...fromB.filter((r) => r.word.startsWith(`${t} b1`))),
      );
      await Promise.all([a.close(), b.close()]);
      await withStore(config, async (c) => assert.deepStrictEqual(await listAll(c, t), all));
    } finally {
      await Promise.all([a.close(), b?.close()]);
    }
  },
);

viewTest(
  "a second gateway on a view file of its own rebuilds the same list after edits and deletions",
  async (config, dir) => {
    const t = tag();
    const keep = newRecord(`${t} keep`, "never touched");
    const twice = newRecord(`${t} twice`, "edited twice");
    const doomed = newRecord(`${t} doomed`, "deleted, secret text");
    const brief = newRecord(`${t} brief`, "edited, then deleted");
    const once = edited(twice, `${t} twice once`, "first edit");
    const again = edited(once, `${t} twice again`, "second edit");
    const briefly = edited(brief, `${t} brief edited`, "soon gone");
    const expected = listed(keep, again);
    await withStore(config, async (a) => {
      for (const r of [keep, twice, doomed, brief]) await a.add(r);
      assert.equal(await a.replace(once, revisionOf(twice)), true);
      assert.equal(await a.replace(again, revisionOf(once)), true);
      assert.equal(await a.remove(doomed.id, revisionOf(doomed)), true);
      assert.equal(await a.replace(briefly, revisionOf(brief)), true);
      assert.equal(await a.remove(brief.id, revisionOf(briefly)), true);
      // Read-your-writes: each resolved once this view had applied it.
      assert.deepStrictEqual(await a.get(twice.id), expected[1]);
      assert.equal(await a.get(doomed.id), undefined);
      assert.deepStrictEqual(await listAll(a, t), expected);
    });
    // `b` has a view file of its own: whatever it holds, it read from the stream.
    await withStore(withView(config, `${dir}/second.db`), async (b) => {
      assert.deepStrictEqual(await listAll(b, t), expected);
      assert.deepStrictEqual(await b.get(twice.id), expected[1]);
      assert.equal(await b.get(doomed.id), undefined);
      assert.equal(await b.get(brief.id), undefined);
      // The search key was replaced with the text: the old text is no longer found.
      assert.deepStrictEqual(await b.list({ search: fold(`${t} twice a`), limit: 5, offset: 0 }), [
        expected[1],
      ]);
      assert.deepStrictEqual(
        await b.list({ search: fold(`${t} twice o`), limit: 5, offset: 0 }),
        [],
      );
    });
    // The same file deleted and rebuilt, too.
    await removeView(config.options.viewPath);
    await withStore(config, async (c) => assert.deepStrictEqual(await listAll(c, t), expected));
    // Nothing was taken out of the stream: the deleted word's text is still in its history.
    const mine = (await rawStream(config)).map((m) => ({
      type: m.type,
      body: m.body.length ? JSON.parse(m.body.toString("utf8")) : undefined,
    })).filter(({ body }) =>
      [body?.id, body?.record?.id].some((id) => id === doomed.id || id === twice.id)
    );
    assert.deepStrictEqual(mine, [
      { type: "word", body: listed(twice)[0] },
      { type: "word", body: listed(doomed)[0] },
      { type: "update", body: { revision: revisionOf(twice), record: once } },
      { type: "update", body: { revision: revisionOf(once), record: again } },
      { type: "delete", body: { id: doomed.id, revision: revisionOf(doomed) } },
    ]);
  },
);

viewTest(
  "edits and deletions that do not apply change nothing on any view, and answer false",
  async (config, dir) => {
    const t = tag();
    const target = newRecord(`${t} target`, "original");
    const gone = newRecord(`${t} gone`, "to be deleted");
    const first = edited(target, `${t} target`, "edited by a");
    const a = await openStore(config);
    const b = await openStore(withView(config, `${dir}/second.db`));
    try {
      await a.add(target);
      await a.add(gone);
      assert.equal(await a.replace(first, revisionOf(target)), true);
      assert.equal(await b.remove(gone.id, revisionOf(gone)), true);
      // A stale revision: `first` replaced the one these expect.
      assert.equal(
        await b.replace(edited(target, `${t} stale`, "stale"), revisionOf(target)),
        false,
      );
      assert.equal(await b.remove(target.id, revisionOf(target)), false);
      assert.equal(
        await a.replace(edited(first, `${t} odd`, "odd"), "2000-01-01T00:00:00.000Z"),
        false,
      );
      // A deleted word: neither its last revision nor a later one brings it back.
      assert.equal(
        await a.replace(edited(gone, `${t} gone back`, "back"), revisionOf(gone)),
        false,
      );
      assert.equal(await a.remove(gone.id, revisionOf(gone)), false);
      // Never an upsert: an edit of a word no view holds creates nothing.
      const never = newRecord(`${t} never`, "never added");
      assert.equal(await b.replace(edited(never, `${t} never`, "x"), revisionOf(never)), false);
      await Promise.all([caughtUp(a), caughtUp(b)]);
      for (const s of [a, b]) {
        assert.deepStrictEqual(await listAll(s, t), listed(first));
        assert.deepStrictEqual(await s.get(target.id), listed(first)[0]);
        assert.equal(await s.get(gone.id), undefined);
        assert.equal(await s.get(never.id), undefined);
      }
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
    await withStore(withView(config, `${dir}/third.db`), async (c) => {
      assert.deepStrictEqual(await listAll(c, t), listed(first));
    });
  },
);

viewTest(
  "concurrent edits of one word from two view files: the stream's order decides, alike on both",
  async (config, dir) => {
    const t = tag();
    const a = await openStore(config);
    const b = await openStore(withView(config, `${dir}/second.db`));
    try {
      const w = newRecord(`${t} contested`, "start");
      await a.add(w);
      await caughtUp(b);
      let current = listed(w)[0];
      const wins = { a: 0, b: 0 };
      for (let round = 0; round < 30; round++) {
        const fromA = edited(current, `${t} a${round}`, `by a in round ${round}`);
        const fromB = edited(current, `${t} b${round}`, `by b in round ${round}`);
        const [byA, byB] = await Promise.all([
          a.replace(fromA, revisionOf(current)),
          b.replace(fromB, revisionOf(current)),
        ]);
        assert.notEqual(byA, byB, `round ${round}: exactly one of two edits of a revision applies`);
        current = listed(byA ? fromA : fromB)[0];
        wins[byA ? "a" : "b"]++;
        // Each store's answer is what the other one's view did with its event.
        await Promise.all([caughtUp(a), caughtUp(b)]);
        assert.deepStrictEqual(await a.get(w.id), current);
        assert.deepStrictEqual(await b.get(w.id), current);
      }
      // Last, a deletion against an edit of the same revision.
      const last = edited(current, `${t} last`, "the last edit");
      const [removed, replaced] = await Promise.all([
        a.remove(w.id, revisionOf(current)),
        b.replace(last, revisionOf(current)),
      ]);
      assert.notEqual(removed, replaced);
      await Promise.all([caughtUp(a), caughtUp(b)]);
      const end = removed ? [] : listed(last);
      assert.deepStrictEqual(await listAll(a, t), end);
      assert.deepStrictEqual(await listAll(b, t), end);
      console.log(`  30 rounds: a's edit applied in ${wins.a}, b's in ${wins.b}`);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  },
);

viewTest(
  "two stores on one view file apply each edit once and each learns its own edit's outcome",
  async (config) => {
    const t = tag();
    const a = await openStore(config);
    const b = await openStore(config);
    try {
      const words = Array.from({ length: 50 }, (_, i) => newRecord(`${t} ${i}`, "start"));
      await Promise.all(words.map((w) => a.add(w)));
      await caughtUp(b);
      // Whichever consumer applies a batch first, the other skips it and reads the outcomes.
      const survivors = await Promise.all(words.map(async (w) => {
        const edit = edited(w, w.word, "edited by a");
        const [replaced, removed] = await Promise.all([
          a.replace(edit, revisionOf(w)),
          b.remove(w.id, revisionOf(w)),
        ]);
        assert.notEqual(replaced, removed, `${w.word}: exactly one applies`);
        return replaced ? listed(edit) : [];
      })).then((l) => l.flat());
      await Promise.all([caughtUp(a), caughtUp(b)]);
      assert.deepStrictEqual(await listAll(a, t), survivors);
      assert.deepStrictEqual(await listAll(b, t), survivors);
      await Promise.all([a.close(), b.close()]);
      // The file holds each word as the stream's order leaves it: a rebuild agrees.
      await withStore(config, async (c) => assert.deepStrictEqual(await listAll(c, t), survivors));
      await removeView(config.options.viewPath);
      await withStore(config, async (c) => assert.deepStrictEqual(await listAll(c, t), survivors));
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  },
);

viewTest(
  "a view file from before edits gets the updated_at column and is rebuilt with the edits",
  async (config) => {
    const path = config.options.viewPath;
    const t = tag();
    const w = newRecord(`${t} old file`, "before edits existed");
    const edit = edited(w, w.word, "edited meanwhile");
    await withStore(config, async (s) => {
      await s.add(w);
      assert.equal(await s.replace(edit, revisionOf(w)), true);
    });
    // As an older gateway left it: no updated_at, no outcomes, and the edit event not applied.
    const db = new DatabaseSync(path);
    try {
      db.prepare("UPDATE words SET definition = ?, search_key = ? WHERE id = ?")
        .run(w.definition, w.searchKey, w.id);
      db.exec("ALTER TABLE words DROP COLUMN updated_at; DROP TABLE view_outcomes");
    } finally {
      db.close();
    }
    await withStore(config, async (s) => {
      assert.deepStrictEqual(await s.get(w.id), listed(edit)[0]);
      const next = edited(edit, w.word, "edited in the upgraded view");
      assert.equal(await s.replace(next, revisionOf(edit)), true);
      assert.deepStrictEqual(await listAll(s, t), listed(next));
    });
  },
);

viewTest(
  "an edit and a deletion through the shared edit algorithm: p50 of 100 each",
  async (config) => {
    await withStore(config, async (s) => {
      const t = tag();
      const w = newRecord(`${t} edited`, "0");
      await s.add(w);
      let n = 0;
      const edit = await p50(() => updateRecord(s, w.id, { definition: String(++n) }), 100);
      const doomed = Array.from({ length: 100 }, (_, i) => newRecord(`${t} doomed ${i}`, "x"));
      await s.addMany(doomed);
      let i = 0;
      const deletion = await p50(() => deleteRecord(s, doomed[i++].id), 100);
      // Its two halves: the read, and the compare-and-set alone (the revision known).
      const read = await p50(() => s.get(w.id), 100);
      let current = (await s.get(w.id))!;
      const cas = await p50(async () => {
        const next = edited(current, w.word, String(++n));
        assert(await s.replace(next, revisionOf(current)));
        current = listed(next)[0];
      }, 100);
      console.log(
        `  p50 of 100: updateRecord ${edit.toFixed(2)} ms, deleteRecord ${deletion.toFixed(2)}` +
          ` ms; get ${read.toFixed(2)} ms, replace ${cas.toFixed(2)} ms`,
      );
      const now = await s.get(w.id);
      assert.equal(now?.definition, String(n));
      assert.deepStrictEqual(await listAll(s, t), [now]);
    });
  },
);

viewTest(
  "the gateway's memory does not grow with the stream: 100,000 words absorbed by the view",
  async (config) => {
    const t = tag();
    const store = await openStore(config);
    try {
      const absorb = async (count: number) => {
        await publishRaw(config, words(t, count));
        // Applied in stream order: once this is listed, so is everything published before it.
        await store.add(newRecord(`${t} after ${count}`, "published after them"));
      };
      await absorb(20_000); // the pipeline's buffers and the heap reach their working size
      const before = memory();
      const t0 = performance.now();
      await absorb(100_000);
      const ms = performance.now() - t0;
      const after = memory();
      const heap = after.heapMiB - before.heapMiB;
      const rss = after.rssMiB - before.rssMiB;
      console.log(
        `  100,000 words of 2 × 256 characters published and absorbed in ${Math.round(ms)} ms; ` +
          `live heap ${before.heapMiB.toFixed(1)} → ${after.heapMiB.toFixed(1)} MiB ` +
          `(${heap.toFixed(1)}), RSS ${before.rssMiB.toFixed(0)} → ${
            after.rssMiB.toFixed(0)
          } MiB ` +
          `(${rss.toFixed(1)})`,
      );
      const last = await store.list({ search: fold(`${t} 99999 w`), limit: 5, offset: 0 });
      assert.equal(last.length, 1, "the view holds the last word");
      assert(heap < 25, `the live heap grew by ${heap.toFixed(1)} MiB`);
      assert(rss < 50, `the resident set grew by ${rss.toFixed(1)} MiB`);
    } finally {
      await store.close();
      await deleteStream(config); // leave the matrix's stream short for the next test
    }
  },
);

viewTest(
  "a cursor page deep in 100,000 words costs about the same as the first page",
  async (config) => {
    await deleteStream(config, true); // a stream of exactly these words (and markers)
    const t = tag();
    const count = 100_000;
    const deepIndex = count - 100;
    const made: NewWord[] = [];
    await publishRaw(
      config,
      (function* () {
        let i = 0;
        for (const r of words(t, count)) {
          if (i++ >= deepIndex) made.push(r);
          yield r;
        }
      })(),
    );
    const t0 = performance.now();
    const store = await openStore(config); // a new view: rebuilt from the stream's first offset
    const rebuildMs = performance.now() - t0;
    try {
      const [deep, ...rest] = made;
      const firstPage = await p50(() => store.list({ limit: 21, offset: 0 }));
      const deepPage = await p50(() => store.list({ limit: 21, offset: 0, after: deep.id }));
      const needle = fold(t);
      const firstSearch = await p50(() => store.list({ search: needle, limit: 21, offset: 0 }));
      const deepSearch = await p50(() =>
        store.list({ search: needle, limit: 21, offset: 0, after: deep.id })
      );
      console.log(
        `  rebuilt a view of ${count} words in ${Math.round(rebuildMs)} ms ` +
          `(${Math.round(count / rebuildMs * 1000)} messages/s); p50 of 21 words: ` +
          `first page ${firstPage.toFixed(2)} ms, after word ${deepIndex} ${
            deepPage.toFixed(2)
          } ms; searched: first ${firstSearch.toFixed(2)} ms, deep ${deepSearch.toFixed(2)} ms`,
      );
      assert.deepStrictEqual(
        await store.list({ search: needle, limit: 21, offset: 0, after: deep.id }),
        listed(...rest.slice(0, 21)),
      );
    } finally {
      await store.close();
      await deleteStream(config);
    }
  },
);
