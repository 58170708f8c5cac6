/**
 * The replicas of the matrix's cluster topology (`deno task matrix up
 * --cluster`) replicate for real: a write on the primary, through the driver
 * the gateway uses, is read back on the replica (plain, and over TLS verified
 * against the matrix CA); the replica refuses writes; its own statistics
 * count the reads it serves; and the matrix user can hold replication back
 * (the lag later tests inject) and let it go. Skipped loudly without
 * `<STORE>_READ_URL` (single topology); a failure in CI.
 */
import assert from "node:assert/strict";
import { eventually } from "./support/matrix.ts";
import { requiredTest, testEnv } from "./support/env.ts";
import {
  mysqlPair,
  type Pair,
  type PairConfig,
  postgresPair,
  redisPair,
} from "./support/replicas.ts";

type ReplicatedStore = "POSTGRESQL" | "MYSQL" | "REDIS";

const PAIRS: Record<ReplicatedStore, (c: PairConfig) => Promise<Pair>> = {
  POSTGRESQL: postgresPair,
  MYSQL: mysqlPair,
  REDIS: redisPair,
};

/** How each replica says no to a write. */
const REFUSAL: Record<ReplicatedStore, (e: Error & { code?: string; errno?: number }) => boolean> =
  {
    POSTGRESQL: (e) => e.code === "25006", // read_only_sql_transaction
    MYSQL: (e) => e.errno === 1290, // ER_OPTION_PREVENTS_STATEMENT (--read-only)
    REDIS: (e) => e.message.startsWith("READONLY"),
  };

/** The plain and the TLS pair of `store`, or undefined when the env does not name a replica. */
function configs(store: ReplicatedStore): { plain: PairConfig; tls?: PairConfig } | undefined {
  const primaryUrl = testEnv[`${store}_URL`];
  const replicaUrl = testEnv[`${store}_READ_URL`]?.split(",")[0]?.trim();
  if (!primaryUrl || !replicaUrl) return undefined;
  const ca = testEnv.MATRIX_CA_CERT;
  const tlsPrimary = testEnv[`MATRIX_${store}_TLS_URL`];
  const tlsReplica = testEnv[`MATRIX_${store}_READ_TLS_URL`];
  return {
    plain: { primaryUrl, replicaUrl },
    tls: ca && tlsPrimary && tlsReplica
      ? { primaryUrl: tlsPrimary, replicaUrl: tlsReplica, caCert: Deno.readTextFileSync(ca) }
      : undefined,
  };
}

/** A test on `store`'s primary/replica pair (TLS when `tls`); skipped loudly, or failing in CI, without one. */
function replicaTest(
  store: ReplicatedStore,
  name: string,
  fn: (pair: Pair) => Promise<void>,
  tls = false,
): void {
  const cfg = configs(store);
  const pairCfg = tls ? cfg?.tls : cfg?.plain;
  requiredTest(`${store} replica: ${name}`, {
    missing: pairCfg ? undefined : `${store}_READ_URL (or its matrix TLS settings) is not set`,
    start: "deno task matrix up --cluster",
    group: `${store} replica tests`,
  }, async () => {
    const pair = await PAIRS[store](pairCfg!);
    try {
      await fn(pair);
    } finally {
      await pair.close();
    }
  });
}

const key = () => crypto.randomUUID();

for (const store of Object.keys(PAIRS) as ReplicatedStore[]) {
  replicaTest(store, "a write on the primary is read back on the replica", async (pair) => {
    const k = key();
    await pair.write(k, "from the primary");
    await eventually(async () => (await pair.read(k)) === "from the primary", 10_000, "replicated");
  });

  replicaTest(store, "over TLS, verified against the matrix CA", async (pair) => {
    assert.equal(await pair.replicaTls(), true, "the replica connection is TLS");
    const k = key();
    await pair.write(k, "over TLS");
    await eventually(async () => (await pair.read(k)) === "over TLS", 10_000, "replicated");
  }, true);

  replicaTest(store, "the replica refuses writes", async (pair) => {
    const k = key();
    const error = await pair.writeOnReplica(k, "must not land");
    assert.ok(error, "a write on the replica succeeded");
    assert.ok(REFUSAL[store](error), `refused for another reason: ${error.message}`);
    assert.equal(await pair.read(k), undefined);
  });

  replicaTest(store, "its own statistics count the reads it serves", async (pair) => {
    const k = key();
    await pair.write(k, "counted");
    await eventually(async () => (await pair.read(k)) === "counted", 10_000, "replicated");
    const before = await pair.replicaReads();
    for (let i = 0; i < 10; i++) await pair.read(k);
    await eventually(async () => (await pair.replicaReads()) >= before + 10, 15_000, "counted");
  });

  replicaTest(store, "the matrix user can hold replication back and let it go", async (pair) => {
    const settled = key();
    await pair.write(settled, "before");
    await eventually(async () => (await pair.read(settled)) === "before", 10_000, "replicated");
    await pair.holdBack(true);
    try {
      const k = key();
      await pair.write(k, "held back");
      await new Promise((r) => setTimeout(r, 1_500));
      assert.equal(await pair.read(k), undefined, "replicated although held back");
      assert.equal(await pair.read(settled), "before", "the replica still serves what it has");
      await pair.holdBack(false);
      await eventually(async () => (await pair.read(k)) === "held back", 15_000, "caught up");
    } finally {
      await pair.holdBack(false);
    }
  });
}
