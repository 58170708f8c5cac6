/**
 * Read/write splitting against the matrix's real replicas (`deno task matrix
 * up --cluster`): PostgreSQL's hot standby, MariaDB's GTID replica, Redis's
 * replica. Reads are counted by the databases' own statistics, not the
 * gateway's; read-your-writes is checked with replication lag injected on
 * purpose; a replica that refuses connections or never answers costs no read.
 *
 * @module
 */
import { setTimeout as sleep } from "node:timers/promises";
import { assertEquals, assertOk } from "../support/assert.ts";
import { newRecord } from "../../stores/records.ts";
import type { NetworkStoreName, OpenStore, StoreConfig, WordStore } from "../../stores/types.ts";
import { storeConfig, storeTest } from "../support/env.ts";
import { type ReplicaAdmin, replicaAdmin } from "../support/replica_admin.ts";

/** The stores with read replicas, and how each opens. */
const STORES: Record<"POSTGRESQL" | "MYSQL" | "REDIS", () => Promise<{ open: OpenStore }>> = {
  POSTGRESQL: () => import("../../stores/postgresql.ts"),
  MYSQL: () => import("../../stores/mysql.ts"),
  REDIS: () => import("../../stores/redis.ts"),
};

/** The store's configuration when it has replicas, else undefined (the test is skipped, or fails in CI). */
function withReplicas(store: NetworkStoreName): StoreConfig | undefined {
  const config = storeConfig(store);
  return config?.readUrls?.length ? config : undefined;
}

async function withStore(
  store: keyof typeof STORES,
  config: StoreConfig,
  fn: (s: WordStore) => Promise<void>,
): Promise<void> {
  const s = await (await STORES[store]()).open(config);
  try {
    await fn(s);
  } finally {
    await s.close();
  }
}

/** A listener that accepts connections and never answers: a stalled server. */
function blackHole(): { url: (scheme: string) => string; close: () => void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  (async () => {
    for await (const conn of listener) held.push(conn);
  })().catch(() => {});
  const { port } = listener.addr as Deno.NetAddr;
  return {
    url: (base) => {
      const u = new URL(base);
      u.port = String(port);
      return u.toString();
    },
    close: () => {
      for (const c of held) c.close();
      listener.close();
    },
  };
}

const READS = 60;

for (const store of Object.keys(STORES) as (keyof typeof STORES)[]) {
  const config = withReplicas(store);
  const needs = { needs: [config] };

  storeTest(
    store,
    "reads go to the replica and writes to the primary, by the databases' own counts",
    async () => {
      const admin: ReplicaAdmin = await replicaAdmin(store, config!);
      try {
        const tag = `rr${crypto.randomUUID().slice(0, 8)}`;
        let replica = 0, primary = 0;
        await withStore(store, config!, async (s) => {
          for (let i = 0; i < 5; i++) await s.add(newRecord(`${tag}-${i}`, "replicated"));
          const before = await admin.reads();
          for (let i = 0; i < READS; i++) {
            const page = await s.list({ search: tag, limit: 10, offset: 0 });
            assertEquals(page.length, 5, "every acknowledged write is read back");
          }
          await s.close(); // PostgreSQL counts a session's scans when it ends
          await sleep(300);
          const after = await admin.reads();
          replica = after.replica - before.replica;
          primary = after.primary - before.primary;
        });
        console.log(`${store}: ${READS} reads -> replica ${replica}, primary ${primary}`);
        assertOk(replica >= READS, `the replica served ${replica} of ${READS} reads`);
        assertOk(primary < READS * 0.2, `the primary served ${primary} of ${READS} reads`);
      } finally {
        await admin.close();
      }
    },
    needs,
  );

  storeTest(
    store,
    "read-your-writes holds while the replica lags, and reads return to it once it catches up",
    async () => {
      const admin = await replicaAdmin(store, config!);
      try {
        await withStore(store, config!, async (s) => {
          const tag = `ryw${crypto.randomUUID().slice(0, 8)}`;
          await admin.lag(true);
          try {
            for (let i = 0; i < 5; i++) {
              await s.add(newRecord(`${tag}-${i}`, "lagging"));
              const page = await s.list({ search: tag, limit: 10, offset: 0 });
              assertEquals(page.length, i + 1, "a word just added is listed at once");
            }
          } finally {
            await admin.lag(false);
          }
          // Once the lag is gone, reads return to the replica.
          await sleep(1_500);
          const before = await admin.reads();
          for (let i = 0; i < READS; i++) {
            assertEquals((await s.list({ search: tag, limit: 10, offset: 0 })).length, 5);
          }
          await s.close();
          await sleep(300);
          const after = await admin.reads();
          assertOk(
            after.replica - before.replica >= READS * 0.8,
            `after the lag: replica ${after.replica - before.replica} of ${READS} reads`,
          );
        });
      } finally {
        await admin.close();
      }
    },
    needs,
  );

  storeTest(
    store,
    "read-your-writes across workers: a word added through one is listed at once through another",
    async () => {
      // Two opens of the store in one isolate, as two workers of one gateway (WORKERS=2):
      // their routers meet on the same BroadcastChannel as the workers' do.
      const admin = await replicaAdmin(store, config!);
      const asWorker = { ...config!, workers: 2 };
      try {
        await withStore(store, asWorker, (a) =>
          withStore(store, asWorker, async (b) => {
            const tag = `wryw${crypto.randomUUID().slice(0, 8)}`;
            await admin.lag(true);
            try {
              for (let i = 0; i < 3; i++) {
                await a.add(newRecord(`${tag}-${i}`, "lagging"));
                const page = await b.list({ search: tag, limit: 10, offset: 0 });
                assertEquals(page.length, i + 1, "a word added through A is listed through B");
              }
            } finally {
              await admin.lag(false);
            }
          }));
      } finally {
        await admin.close();
      }
    },
    needs,
  );

  storeTest(
    store,
    "a replica that refuses connections or never answers costs no read, and shows unhealthy",
    async () => {
      const hole = blackHole();
      const refused = config!.readUrls![0].replace(/:\d+(?=\/|$)/, ":1");
      const broken = { ...config!, readUrls: [hole.url(config!.readUrls![0]), refused] };
      try {
        await withStore(store, broken, async (s) => {
          const tag = `gone${crypto.randomUUID().slice(0, 8)}`;
          await s.add(newRecord(tag, "served by the primary"));
          const t0 = performance.now();
          for (let i = 0; i < 20; i++) {
            assertEquals((await s.list({ search: tag, limit: 10, offset: 0 })).length, 1);
          }
          const took = performance.now() - t0;
          assertOk(took < 4_000, `20 reads took ${took.toFixed(0)} ms`);
          await sleep(800);
          await s.ping();
          const nodes = s.nodes?.() ?? [];
          assertEquals(nodes.map((n) => [n.role, n.healthy]), [
            ["primary", true],
            ["replica", false],
            ["replica", false],
          ]);
          assertOk(!JSON.stringify(nodes).includes("127.0.0.1"), JSON.stringify(nodes));
        });
      } finally {
        hole.close();
      }
    },
    needs,
  );
}
