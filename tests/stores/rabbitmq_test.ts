/**
 * RabbitMQ-specific behaviour against the real broker of the matrix: words
 * live in the durable stream `words` and reading never consumes them, a
 * second instance rebuilds its list from the stream, TLS is verified against
 * the matrix CA (certificate and host name), and a dead connection or a
 * silent broker surfaces as a rejection, fast.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import amqp from "amqplib";
import { newRecord } from "../../stores/records.ts";
import { open } from "../../stores/rabbitmq.ts";
import { fold } from "../../stores/fold.ts";
import type { NewWord, StoreConfig, WordRecord } from "../../stores/types.ts";
import { listed } from "../support/records.ts";
import { storeTest, tlsStoreConfig } from "../support/env.ts";
import { strangerCa } from "../support/tls.ts";

const tls = tlsStoreConfig("RABBITMQ");

function tag(): string {
  return `rmq-${crypto.randomUUID().slice(0, 8)}`;
}

async function withStore<T>(
  config: StoreConfig,
  fn: (s: Awaited<ReturnType<typeof open>>) => Promise<T>,
) {
  const store = await open(config);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** Reads every message of the `words` stream straight through amqplib, without the store. */
async function rawStream(config: StoreConfig): Promise<{ body: Buffer; type?: string }[]> {
  const conn = await amqp.connect(config.url, { timeout: 2000 });
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

/** A TCP relay from 127.0.0.2:<random> to `target`, whose connections can be cut. */
function relay(target: number) {
  const listener = Deno.listen({ hostname: "127.0.0.2", port: 0 });
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
  const url = new URL(config.url);
  url.hostname = "127.0.0.2";
  url.port = String(port);
  return { ...config, url: url.toString() };
}

storeTest(
  "RABBITMQ",
  "reading the list twice gives the same list: nothing is consumed",
  async (config) => {
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
  },
);

storeTest(
  "RABBITMQ",
  "a word added by one instance is listed by a second, freshly opened instance",
  async (config) => {
    const t = tag();
    const record = newRecord(`${t} 😀 e\u0301 עברית`, `O'Reilly "q" \\ $gt %_ .* ${t}`);
    await withStore(config, (a) => a.add(record));
    // `a` is closed and `b` is another configured store (its own projection):
    // whatever `b` lists, it read from the stream.
    await withStore({ ...config }, async (b) => {
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

storeTest(
  "RABBITMQ",
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
    const conn = await amqp.connect(config.url, { timeout: 2000 });
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

storeTest(
  "RABBITMQ",
  "concurrent adds are all listed in id order, paged and searched",
  async (config) => {
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
      const all = await store.list({ search: "needle", limit: 1000, offset: 0 });
      assert.deepStrictEqual(all.filter((r) => r.word.startsWith(t)), listed(...needles));
      assert.deepStrictEqual(
        await store.list({ search: t, limit: 7, offset: 140 }),
        listed(...records.slice(140, 147)),
      );
      assert.deepStrictEqual(await store.list({ search: `${t}-1.`, limit: 5, offset: 0 }), []);
    });
  },
);

/** Publishes `record` as a word message straight through amqplib, as another writer would. */
async function publishRaw(config: StoreConfig, record: WordRecord): Promise<void> {
  const conn = await amqp.connect(config.url, { timeout: 2000 });
  try {
    const pub = await conn.createConfirmChannel();
    await new Promise<void>((resolve, reject) =>
      pub.sendToQueue(
        "words",
        Buffer.from(JSON.stringify(record)),
        { type: "word", messageId: record.id, persistent: true },
        (err) => err ? reject(err) : resolve(),
      )
    );
  } finally {
    await conn.close().catch(() => {});
  }
}

storeTest(
  "RABBITMQ",
  "reconnecting resumes the projection where it stopped and sees what was published meanwhile",
  async (base) => {
    const config = { ...base };
    const t = tag();
    const before = newRecord(`${t} before`, "seen by the first connection");
    const meanwhile = newRecord(`${t} meanwhile`, "published while the store was closed");
    await withStore(config, (s) => s.add(before));
    await publishRaw(config, meanwhile);
    await withStore(config, async (s) => {
      assert.deepStrictEqual(
        await s.list({ search: t, limit: 10, offset: 0 }),
        listed(before, meanwhile),
      );
    });
  },
);

storeTest(
  "RABBITMQ",
  "a stream deleted and recreated behind the store's back is read again, not mixed with the old one",
  async (base) => {
    const config = { ...base };
    const t = tag();
    const old = newRecord(`${t} old`, "in the stream that gets deleted");
    await withStore(config, (s) => s.add(old));
    const conn = await amqp.connect(config.url, { timeout: 2000 });
    try {
      const ch = await conn.createChannel();
      await ch.deleteQueue("words");
    } finally {
      await conn.close().catch(() => {});
    }
    const fresh = newRecord(`${t} fresh`, "in the new stream");
    await withStore(config, async (s) => {
      await s.add(fresh);
      assert.deepStrictEqual(await s.list({ search: t, limit: 10, offset: 0 }), listed(fresh));
    });
  },
);

storeTest("RABBITMQ", "amqps with the matrix CA connects, verifies and round-trips", async () => {
  await withStore(tls!, async (store) => {
    await store.ping();
    const record = newRecord(`${tag()} tls`, "written over TLS 🔒");
    await store.add(record);
    assert.deepStrictEqual(
      await store.list({ search: fold(record.word), limit: 5, offset: 0 }),
      listed(record),
    );
  });
}, { needs: [tls] });

storeTest(
  "RABBITMQ",
  "TLS is refused for a foreign CA, no CA, or the wrong host name",
  async () => {
    await assert.rejects(open({ ...tls!, caCert: await strangerCa() }));
    // Without a CA the system trust store is used, which does not know the matrix CA.
    await assert.rejects(open({ ...tls!, caCert: undefined }));
    // A CA with a plain amqp:// URL is a configuration error, not a silent downgrade.
    await assert.rejects(open({ ...tls!, url: tls!.url.replace(/^amqps:/, "amqp:") }), /amqps/);
    // Same broker and CA, but reached as 127.0.0.2, which the certificate does not name.
    const r = relay(Number(new URL(tls!.url).port));
    try {
      const err = await open(viaRelay(tls!, r.port)).then(() => undefined, (e: Error) => e);
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

storeTest("RABBITMQ", "a cut connection rejects add, list and ping at once", async (config) => {
  const r = relay(Number(new URL(config.url).port));
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

storeTest(
  "RABBITMQ",
  "open rejects quickly and without secrets when nothing or a silent peer answers",
  async (config) => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const held: Deno.Conn[] = [];
    const accepting = (async () => {
      for await (const conn of listener) held.push(conn);
    })();
    try {
      const url = new URL(config.url);
      url.port = String((listener.addr as Deno.NetAddr).port);
      const t0 = performance.now();
      const err = await open({ ...config, url: url.toString(), connectTimeoutMs: 500 }).then(
        () => undefined,
        (e: Error) => e,
      );
      assert(err instanceof Error, "open must reject");
      assert(performance.now() - t0 < 1500, `open took ${Math.round(performance.now() - t0)} ms`);
      assert(!err.message.includes(decodeURIComponent(url.password)), "no password in the error");
      const wrongPass = new URL(config.url);
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

storeTest("RABBITMQ", "close never rejects, even twice, and later calls reject", async (config) => {
  const store = await open(config);
  await store.close();
  await store.close();
  await assert.rejects(store.list({ limit: 1, offset: 0 }));
  await assert.rejects(store.add(newRecord(tag(), "closed")));
});
