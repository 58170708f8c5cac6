/**
 * The fault suite (`deno task test:faults`): the real gateway process under
 * load (adds, lists, edits and deletions) while the real databases of the
 * local matrix are killed, stalled and restarted, then a soak and a SIGTERM
 * of the gateway itself; after each, every acknowledged write is checked
 * against what the stores list (support/verify.ts). Each scenario
 * adds a row to the summary (printed, and written to
 * tests/artifacts/faults.md); any breach fails its test.
 *
 * With read replicas configured (`<STORE>_READ_URL`, the matrix's cluster
 * topology) it also kills and stalls each replica, its primary's scenarios
 * require reads to keep being served, and the control requires most reads
 * on the replicas, counted by the databases themselves.
 *
 * It stops, pauses and restarts matrix servers, and (unless
 * `FAULT_KEEP_DATA=1`) empties the gateway's data in every store before each
 * scenario and at the end, restarting nothing (support/wipe.ts); a server
 * found stopped (a restart that failed) is started again. Run it alone,
 * after the main suite. It leaves every server running.
 * `FAULT_STORES=REDIS,…` hurts only those databases.
 */
import { assertEquals } from "../support/assert.ts";
import { IN_CI, testEnv } from "../support/env.ts";
import { type NetworkStoreName, STORE_NAMES } from "../../stores/types.ts";
import {
  primaryTarget,
  replicaServicesOf,
  replicaTarget,
  serviceOf,
  serviceRunning,
  startStopped,
} from "./support/databases.ts";
import {
  configuredStores,
  type Gateway,
  type Run,
  startGateway,
  waitHealthy,
} from "./support/gateway.ts";
import { checkReplication, NodeReads, storesWithReplicas } from "./support/replication.ts";
import { wipeStores } from "./support/wipe.ts";
import { onlyP99Breaches } from "./support/judge.ts";
import { MixedLoad } from "./support/load.ts";
import { renderStoreTable, renderTable, report, rows, type SummaryRow } from "./support/summary.ts";
import { control } from "./scenarios/control.ts";
import { killAndRestart } from "./scenarios/kill.ts";
import { stallStore } from "./scenarios/stall.ts";
import { soak } from "./scenarios/soak.ts";
import { sigtermUnderLoad } from "./scenarios/sigterm.ts";
import { clusteredStores, loseNode, nodeServices, stallNode } from "./scenarios/node_loss.ts";

const stores = configuredStores();
/** `FAULT_STORES=REDIS,MYSQL` hurts only those databases (for working on one store). */
const only = testEnv.FAULT_STORES?.split(",").map((s) => s.trim().toUpperCase());
const network = stores.filter((s) =>
  s !== "SQLITE" && (!only || only.includes(s))
) as NetworkStoreName[];
const missing = STORE_NAMES.filter((s) => !stores.includes(s));
/** Every configured network store, hurt or not: the load runs on all of them. */
const networkAll = stores.filter((s) => s !== "SQLITE") as NetworkStoreName[];
/** Stores with read replicas configured: their nodes are counted, and hurt one by one. */
const replicated = storesWithReplicas(stores);
/** Stores whose URL lists a cluster's nodes: their node scenarios replace their database's. */
const clustered = clusteredStores(stores);
/** Every matrix server the run uses, each primary before its replicas (node 1 before 2 and 3). */
const services = networkAll.flatMap((s) =>
  clustered.includes(s) ? nodeServices(s) : [
    serviceOf(s),
    ...(replicated.includes(s) ? replicaServicesOf(s) : []),
  ]
);
const sqliteDir = await Deno.makeTempDir({ prefix: "gateway-faults-" });
const opts = { sanitizeOps: false, sanitizeResources: false };
/** Seconds of load a new gateway gets before its scenario. */
const WARM_UP_S = 8;

if (missing.length && !IN_CI) {
  console.warn(
    `\n!!! The fault suite runs without ${missing.join(", ")}: not configured.` +
      " Run `deno task matrix up` first. In CI this fails.\n",
  );
}

Deno.test("the fault suite has every store configured in CI", () => {
  if (IN_CI) assertEquals(missing, [], "CI requires every store (deno task matrix up)");
});

/** `FAULT_KEEP_DATA=1` keeps the matrix's data instead of starting and ending on empty stores. */
const wipe = !testEnv.FAULT_KEEP_DATA;

/**
 * Every server the run uses running (one a failed restart left stopped is
 * started: `matrix up <service>`) and, unless `FAULT_KEEP_DATA=1`, the
 * gateway's data emptied in every store, replicas included, restarting
 * nothing (support/wipe.ts), with nothing left in the gateway's directory
 * (its SQLite file, RabbitMQ's view of a stream that no longer exists).
 */
async function emptyDatabases(): Promise<void> {
  const started = await startStopped(services);
  if (started.length) console.log(`started again (found stopped): ${started.join(", ")}`);
  if (!wipe) return;
  await wipeStores(networkAll);
  for await (const f of Deno.readDir(sqliteDir)) {
    await Deno.remove(`${sqliteDir}/${f.name}`, { recursive: true });
  }
}

/**
 * Runs `fn` with a fresh gateway (of `workers` workers) whose stores are all
 * healthy, after {@linkcode WARM_UP_S} of discarded load (JIT, pools,
 * caches); stops it afterwards. Unless `FAULT_KEEP_DATA=1`, every scenario
 * starts on empty databases (the gateway's data deleted, nothing restarted): scenarios then
 * do not measure the words their predecessors left (FerretDB's page cost
 * grows with its collection), and a failure in one cannot leak into the
 * next. Reads by node of the stores with replicas are counted from before
 * the gateway starts (`Run.reads`).
 */
async function withGateway(
  fn: (g: Gateway, run: Run) => Promise<void>,
  workers = 1,
): Promise<void> {
  await emptyDatabases();
  const reads = replicated.length ? await NodeReads.start(replicated) : undefined;
  const g = await startGateway(sqliteDir, workers);
  try {
    await waitHealthy(g.url, stores, 180_000);
    const warm = new MixedLoad({ url: g.url, stores, connections: 32, maxSeconds: WARM_UP_S });
    await new Promise((r) => setTimeout(r, WARM_UP_S * 1000));
    await warm.stop();
    await fn(g, { warm, reads });
  } catch (e) {
    // What the gateway printed last (redacted log lines): why it stopped answering, if it did.
    console.error(`--- the gateway's last output ---\n${g.output().slice(-4000)}\n---`);
    throw e;
  } finally {
    await g.stop();
  }
}

/**
 * Runs `scenario` with a fresh gateway (of `workers` workers, named in the
 * row when more than one) on empty databases, reports its row and requires
 * no breach. A run whose only breaches are of the healthy-p99 rule is
 * measured again from scratch, up to {@linkcode REMEASURES} times:
 * every row is reported, and one of them must pass. Failed requests, lost
 * writes and every other rule fail at once.
 */
async function judged(
  scenario: (g: Gateway, run: Run) => Promise<SummaryRow>,
  workers = 1,
): Promise<void> {
  for (let attempt = 0;; attempt++) {
    let row: SummaryRow | undefined;
    await withGateway(async (g, run) => {
      row = await scenario(g, run);
      const name = `${row.scenario}${workers > 1 ? `, gateway of ${workers} workers` : ""}${
        attempt ? " (measured again)" : ""
      }`;
      await report({ ...row, scenario: name });
      if (row.breaches.length) printStoreLog(g);
    }, workers);
    if (!row!.breaches.length) return;
    if (!onlyP99Breaches(row!.breaches) || attempt === REMEASURES) {
      return assertEquals(row!.breaches, []);
    }
    console.log("only the healthy-p99 rule was breached: measuring the scenario again");
  }
}

/**
 * Measurements after the first when only the healthy-p99 rule broke: a CI
 * run of 2026-11-29 saw every other store's p99 ×3–5 in two measurements in
 * a row of one scenario (a PostgreSQL standby killed) that passed in every
 * run before and after it, alone and in the same order of scenarios. A later
 * CI run (stop 20, same day) failed two scenarios that pass alone here (a
 * MariaDB primary killed, a PostgreSQL standby stalled) after a suite 5 min
 * longer than usual, as measuring each twice more would make it; its output
 * was cut before their breaches. One measurement more, and the baseline
 * doubled (support/judge.ts `BEFORE_MS`).
 */
const REMEASURES = 3;

/** The gateway's store log lines (redacted by the gateway), the latest last: why calls failed. */
function printStoreLog(g: Gateway): void {
  const lines = g.output().split("\n").filter((l) => l.includes("[store "));
  console.log(`the gateway's store log (last 40 of ${lines.length} lines):`);
  console.log(lines.slice(-40).join("\n"));
}

Deno.test(
  "without a fault, every store serves under the mixed load with its p99 steady (the control)",
  opts,
  async () => {
    await judged((g, run) => control(g, stores, run));
  },
);

/**
 * Clustered stores whose node-loss scenarios run (scenarios/node_loss.ts,
 * under the strict rule: no failed request): they replace the store's
 * whole-database kill, or stall. Every clustered store loses a node to
 * kill -9; Cassandra's node is also stalled (RabbitMQ and Elasticsearch keep
 * the whole-database stall of their first node, under the rule for a lost
 * database: STORE_UNAVAILABLE allowed, serving again within 15 s).
 */
const NODE_KILL: readonly NetworkStoreName[] = ["SCYLLA", "ELASTICSEARCH", "RABBITMQ"];
const NODE_STALL: readonly NetworkStoreName[] = ["SCYLLA"];
const nodeKill = (s: NetworkStoreName) => clustered.includes(s) && NODE_KILL.includes(s);
const nodeStall = (s: NetworkStoreName) => clustered.includes(s) && NODE_STALL.includes(s);

/** The store's database, or its primary when it has replicas (then its reads must not fail). */
const ownServer = (store: NetworkStoreName) => primaryTarget(store, replicated.includes(store));
const primaryNote = (store: NetworkStoreName) =>
  replicated.includes(store) ? " (its primary: reads stay on the replica)" : "";

Deno.test(
  "a database killed with SIGKILL costs only its own store, which serves again after restart and lost no acknowledged write",
  opts,
  async (t) => {
    for (const sick of network.filter((s) => !nodeKill(s))) {
      await t.step(`${sick}: kill -9 under load${primaryNote(sick)}, then restart`, async () => {
        await judged((g, run) => killAndRestart(g, stores, ownServer(sick), run));
      });
    }
  },
);

Deno.test(
  "a database stalled by SIGSTOP gets per-request timeouts while the others serve and the gateway's sockets and memory stay bounded",
  opts,
  async (t) => {
    for (const sick of network.filter((s) => !nodeStall(s))) {
      await t.step(`${sick}: SIGSTOP for 10 s under load${primaryNote(sick)}`, async () => {
        await judged((g, run) => stallStore(g, stores, ownServer(sick), run));
      });
    }
  },
);

/** Stores whose replicas are hurt: replicas configured, and not left out by `FAULT_STORES`. */
const replicaFaults = network.filter((s) => replicated.includes(s));

// Registered only with replicas configured (the cluster topology): CI counts an ignored test as a
// skipped store.
if (replicaFaults.length) {
  Deno.test(
    "a read replica killed with SIGKILL, then restarted, costs its store no request and no acknowledged write",
    opts,
    async (t) => {
      for (const store of replicaFaults) {
        await t.step(`${store}: kill -9 its replica under load, then restart`, async () => {
          await judged((g, run) => killAndRestart(g, stores, replicaTarget(store), run));
        });
      }
    },
  );

  // With several workers a write is acknowledged once every worker learnt its position
  // (stores/replicas.ts): the primary's death must not lose such a write, nor make a read wait on it.
  const twoWorkerKill = replicaFaults[0];
  Deno.test(
    `a primary killed with SIGKILL under a gateway of two workers loses no acknowledged write and its reads stay on the replica (${twoWorkerKill})`,
    opts,
    async () => {
      await judged((g, run) => killAndRestart(g, stores, ownServer(twoWorkerKill), run), 2);
    },
  );

  Deno.test(
    "a read replica stalled by SIGSTOP for 10 s costs its store no request and no acknowledged write",
    opts,
    async (t) => {
      for (const store of replicaFaults) {
        await t.step(`${store}: SIGSTOP its replica for 10 s under load`, async () => {
          await judged((g, run) => stallStore(g, stores, replicaTarget(store), run));
        });
      }
    },
  );
}

/** Stores whose cluster nodes are hurt: a node list, and not left out by `FAULT_STORES`. */
const nodeFaults = network.filter((s) => clustered.includes(s));

// Registered only with a cluster's nodes listed (scenarios/node_loss.ts); they replace that store's
// whole-database kill and stall above.
if (nodeFaults.length) {
  Deno.test(
    "losing one cluster node (kill -9, then restart) costs its store no request and no acknowledged write",
    opts,
    async (t) => {
      for (const store of nodeFaults.filter(nodeKill)) {
        await t.step(
          `${store}: kill -9 the node that matters most under load, then restart`,
          () => judged((g, run) => loseNode(g, stores, store, run)),
        );
      }
    },
  );

  Deno.test(
    "a cluster node stalled by SIGSTOP for 10 s costs its store no request and no acknowledged write",
    opts,
    async (t) => {
      for (const store of nodeFaults.filter(nodeStall)) {
        await t.step(
          `${store}: SIGSTOP the node that matters most for 10 s under load`,
          () => judged((g, run) => stallNode(g, stores, store, run)),
        );
      }
    },
  );
}

Deno.test(
  "120 s of mixed load at concurrency 64 gives no 5xx, loses no write and keeps the gateway's memory flat",
  opts,
  async () => {
    await judged((g) => soak(g, stores));
  },
);

Deno.test(
  "SIGTERM under load finishes in-flight requests, exits 0 within 10 s and loses no acknowledged write",
  opts,
  async () => {
    await emptyDatabases();
    const row = await sigtermUnderLoad(sqliteDir, stores);
    await report(row);
    assertEquals(row.breaches, []);
  },
);

Deno.test(
  "SIGTERM to a gateway of two workers under load: each drains, exit 0 within 10 s, no acknowledged write lost",
  opts,
  async () => {
    await emptyDatabases();
    const row = await sigtermUnderLoad(sqliteDir, stores, 2);
    await report(row);
    assertEquals(row.breaches, []);
  },
);

Deno.test({
  name: "the fault suite leaves every matrix server running on empty data",
  ignore: !wipe || network.length === 0,
  fn: async () => {
    await emptyDatabases();
    const stopped = [];
    for (const s of services) if (!(await serviceRunning(s))) stopped.push(s);
    assertEquals(stopped, [], "matrix servers not running");
    for (const s of replicated) await checkReplication(s);
  },
});

Deno.test("the fault summary is printed", async () => {
  await Deno.remove(sqliteDir, { recursive: true });
  console.log(
    `\nFault suite summary (tests/artifacts/faults.md):\n\n${renderTable(rows)}\n\n` +
      `Edits and deletions per store:\n\n${renderStoreTable(rows)}\n`,
  );
});
