/**
 * Scenario 5, losing one node of a cluster: for a store whose URL lists the
 * nodes of a cluster (the matrix's cluster topology: Cassandra, Elasticsearch
 * and RabbitMQ with three nodes each), under the same mixed load as the kill
 * and stall scenarios, the node that matters most right then is
 *
 * - SIGKILLed, left down 10 s, and restarted with `matrix up <node>`
 *   ({@linkcode loseNode}), or
 * - SIGSTOPped for 10 s, then SIGCONTed ({@linkcode stallNode}; Cassandra).
 *
 * The node is chosen when the fault starts, so it rotates with the cluster:
 * Cassandra's, the node the gateway's driver holds its control connection to
 * (seen from outside: the gateway process's TCP connections to the CQL port,
 * one per node for the pool plus the control connection's, `ss -tnp`);
 * Elasticsearch's, the node holding the `words` index's primary shard
 * (`_cat/shards`); RabbitMQ's, the leader of the `words` stream
 * (`rabbitmqctl list_queues name leader`).
 *
 * Each first checks the topology it relies on (replication factor 3 and all
 * three nodes up; three nodes, the primary shard and its replica started;
 * the stream's three members online and its leader) and fails if it is not
 * there; the data is the known state faults_test.ts leaves (emptied, nothing
 * restarted).
 *
 * Judged: the store of the lost node answers every request (zero failures,
 * zero STORE_UNAVAILABLE), the other stores as in the kill scenario, the
 * node is back in its cluster (the topology check passes again) within 15 s
 * of its restart being ready or of SIGCONT, and afterwards every
 * acknowledged write is listed exactly once (support/verify.ts).
 *
 * @module
 */
import cassandra from "cassandra-driver";
import { cli } from "../../../scripts/matrix/rabbitmq_cli.ts";
import { NODES as RABBIT_NODES } from "../../../scripts/matrix/rabbitmq.ts";
import { matrixDirs, servicePaths } from "../../../scripts/matrix/paths.ts";
import { storeConfig } from "../../support/env.ts";
import { parseContactPoints, replicationOf } from "../../../stores/scylla.ts";
import { parseNodes } from "../../../stores/elasticsearch.ts";
import { splitNodes } from "../../../stores/settings.ts";
import type { NetworkStoreName, StoreName } from "../../../stores/types.ts";
import {
  killService,
  pauseService,
  replicaServicesOf,
  restartService,
  resumeDatabase,
  serviceOf,
  sleep,
  type Target,
} from "../support/databases.ts";
import {
  budgetMs,
  type Gateway,
  ProcessSampler,
  readFigures,
  type Run,
} from "../support/gateway.ts";
import {
  BEFORE_MS,
  describeWorst,
  FAULT_MS,
  judgeFault,
  UNAVAILABLE,
  WARM_MS,
} from "../support/judge.ts";
import { MixedLoad } from "../support/load.ts";
import { windowOf } from "../support/samples.ts";
import { ms, type SummaryRow } from "../support/summary.ts";
import { checkDurability } from "../support/verify.ts";
import { CONNECTIONS, RECOVERY_GRACE_MS, RECOVERY_MS } from "./kill.ts";
import { RSS_FACTOR, SCHEDULING_MS, SOCKET_ALLOWANCE } from "./stall.ts";

/** The stores with a node scenario, when their URL lists several nodes. */
const CLUSTERED: readonly NetworkStoreName[] = ["SCYLLA", "ELASTICSEARCH", "RABBITMQ"];
/** Nodes and replication factor the scenarios rely on. */
export const NODES = 3;
const TAIL_MS = 2_000;
/** How long the topology may take to settle before a scenario (a node catching up). */
const SETTLE_MS = 60_000;

/** The stores of `stores` whose URL lists several nodes of a matrix cluster. */
export function clusteredStores(stores: readonly StoreName[]): NetworkStoreName[] {
  return CLUSTERED.filter((s) =>
    stores.includes(s) && splitNodes(storeConfig(s)?.url ?? "").length > 1 &&
    replicaServicesOf(s).length > 0
  );
}

/** Every matrix service of `store`'s cluster, node 1 first. */
export function nodeServices(store: NetworkStoreName): string[] {
  return [serviceOf(store), ...replicaServicesOf(store)];
}

/** Elasticsearch's `GET path` on the first node of `ELASTICSEARCH_URL` that answers. */
async function esGet<T>(path: string): Promise<T> {
  const config = storeConfig("ELASTICSEARCH")!;
  const { nodes, username, password } = parseNodes(config);
  const headers: Record<string, string> = {};
  if (username || password) headers.authorization = `Basic ${btoa(`${username}:${password}`)}`;
  let last: unknown;
  for (const node of nodes) {
    try {
      const res = await fetch(new URL(path, node), {
        headers,
        signal: AbortSignal.timeout(3_000),
        ...(config.caCert ? { client: Deno.createHttpClient({ caCerts: [config.caCert] }) } : {}),
      });
      if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
      return await res.json() as T;
    } catch (e) {
      last = e;
    }
  }
  throw last;
}

/** Whether the matrix node `service` is a member of the Elasticsearch cluster (`_cat/nodes`). */
async function esNodeJoined(service: string): Promise<boolean> {
  const nodes = await esGet<{ name: string }[]>("/_cat/nodes?h=name&format=json");
  return nodes.some((n) => n.name === `matrix-${service}`);
}

/** `rabbitmqctl list_queues` for the `words` stream, asked of the first node that answers. */
async function streamStatus(): Promise<{ leader: string; members: string[]; online: string[] }> {
  const paths = servicePaths(matrixDirs(), "rabbitmq");
  let last: unknown;
  for (const node of RABBIT_NODES) {
    try {
      const out = await cli("rabbitmqctl", node.nodename, paths, [
        ...["list_queues", "-p", "/", "name", "leader", "members", "online"],
        ...["--formatter", "json"],
      ]);
      const rows = JSON.parse(out) as {
        name: string;
        leader?: string;
        members?: string[];
        online?: string[];
      }[];
      const row = rows.find((r) => r.name === "words");
      if (!row) throw new Error("the words stream does not exist");
      return {
        leader: String(row.leader ?? ""),
        members: Array.isArray(row.members) ? row.members : [],
        online: Array.isArray(row.online) ? row.online : [],
      };
    } catch (e) {
      last = e;
    }
  }
  throw last;
}

/** A fresh driver on every contact point, for `fn`; closed afterwards. */
async function withCassandra<T>(fn: (c: cassandra.Client) => Promise<T>): Promise<T> {
  const config = storeConfig("SCYLLA")!;
  const points = parseContactPoints(config.url);
  const { datacenter } = replicationOf(config.options);
  const client = new cassandra.Client({
    contactPoints: points.hosts,
    localDataCenter: datacenter,
    ...(points.username !== undefined
      ? {
        authProvider: new cassandra.auth.PlainTextAuthProvider(
          points.username,
          points.password ?? "",
        ),
      }
      : {}),
    ...(config.caCert ? { sslOptions: { ca: [config.caCert], rejectUnauthorized: true } } : {}),
    socketOptions: { connectTimeout: 3_000, readTimeout: 5_000 },
    // The nodes it discovers are on the contact points' port (the driver assumes 9042).
    protocolOptions: { port: Number(points.hosts[0].slice(points.hosts[0].lastIndexOf(":") + 1)) },
  });
  try {
    await client.connect();
    return await fn(client);
  } finally {
    await client.shutdown().catch(() => {});
  }
}

/**
 * The topology `store`'s scenarios rely on, as the databases report it:
 * "3 nodes up, RF 3"; throws naming what is missing.
 */
async function topologyOnce(store: NetworkStoreName): Promise<string> {
  if (store === "SCYLLA") {
    const { keyspace, datacenter } = replicationOf(storeConfig("SCYLLA")!.options);
    return await withCassandra(async (c) => {
      const rs = await c.execute(
        "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?",
        [keyspace],
        { prepare: true },
      );
      const replication = rs.first()?.get("replication") as Record<string, string> | undefined;
      const rf = Number(replication?.[datacenter] ?? 0);
      if (rf !== NODES) throw new Error(`keyspace ${keyspace} has replication factor ${rf}`);
      // Each node answers on its own, and sees the two others as peers (a restarted one rejoined).
      const hosts = c.hosts.values();
      const problems: string[] = [];
      for (const host of hosts) {
        try {
          const peers = await c.execute("SELECT peer FROM system.peers_v2", [], {
            host,
            prepare: true,
            readTimeout: 3_000,
          });
          if (peers.rowLength !== NODES - 1) {
            problems.push(`${host.address} sees ${peers.rowLength} peers`);
          }
        } catch (e) {
          problems.push(`${host.address}: ${(e as Error).name}`);
        }
      }
      if (hosts.length !== NODES || problems.length) {
        throw new Error(`${hosts.length} Cassandra nodes known; ${problems.join(", ")}`);
      }
      const up = hosts;
      return `${up.length} Cassandra nodes up, keyspace RF ${rf}`;
    });
  }
  if (store === "ELASTICSEARCH") {
    const health = await esGet<{ number_of_nodes: number }>("/_cluster/health");
    if (health.number_of_nodes !== NODES) {
      throw new Error(`${health.number_of_nodes} Elasticsearch nodes in the cluster`);
    }
    const shards = await esGet<{ prirep: string; state: string; node: string }[]>(
      "/_cat/shards/words?format=json",
    );
    const started = shards.filter((s) => s.state === "STARTED");
    const primary = started.filter((s) => s.prirep === "p");
    const replicas = started.filter((s) => s.prirep === "r");
    if (primary.length !== 1 || replicas.length !== 1 || started.length !== shards.length) {
      throw new Error(
        `words shards: ${shards.map((s) => `${s.prirep} ${s.state} ${s.node}`).join(", ")}`,
      );
    }
    return `${health.number_of_nodes} Elasticsearch nodes, words primary and replica started`;
  }
  const s = await streamStatus();
  if (s.members.length !== NODES || s.online.length !== NODES || !s.leader) {
    throw new Error(
      `words stream: leader ${s.leader || "none"}, members ${s.members.join(" ")}, online ${
        s.online.join(" ")
      }`,
    );
  }
  return `words stream on ${s.members.length} RabbitMQ nodes, ${s.online.length} online`;
}

/**
 * Waits until `store`'s topology is whole; resolves with its description and
 * when it was seen, or undefined at `deadline` with the last problem.
 */
async function waitTopology(
  store: NetworkStoreName,
  deadline: number,
): Promise<{ topology?: string; at: number; problem: string }> {
  let problem = "";
  for (;;) {
    try {
      return { topology: await topologyOnce(store), at: Date.now(), problem };
    } catch (e) {
      problem = (e as Error).message;
    }
    if (Date.now() > deadline) return { at: NaN, problem };
    await sleep(250);
  }
}

/** The topology `store`'s scenarios rely on; throws when it is not whole within a minute. */
export async function checkTopology(store: NetworkStoreName): Promise<string> {
  const t = await waitTopology(store, Date.now() + SETTLE_MS);
  if (!t.topology) throw new Error(`${store}: the cluster is not whole: ${t.problem}`);
  return t.topology;
}

/**
 * The gateway process `pid`'s established TCP connections to `port`, each
 * as its peer's IP and its socket's inode (`ss -tnpe`): inodes are handed
 * out in increasing order, so the lowest is the oldest connection.
 */
async function connectionsOf(pid: number, port: number): Promise<{ host: string; ino: number }[]> {
  const out = await new Deno.Command("ss", {
    args: ["-tnpeH", "state", "established", `( dport = :${port} )`],
    stdout: "piped",
    stderr: "null",
  }).output();
  const found: { host: string; ino: number }[] = [];
  for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
    if (!line.includes(`pid=${pid},`)) continue;
    const peer = line.trim().split(/\s+/)[3]; // Recv-Q Send-Q Local Peer Process …
    const host = peer?.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
    const ino = Number(/\bino:(\d+)/.exec(line)?.[1]);
    if (host && Number.isFinite(ino)) found.push({ host, ino });
  }
  return found.sort((a, b) => a.ino - b.ino);
}

/** The node to hurt and how it was chosen ("control connection: 2 of 4 connections"). */
interface Choice {
  target: Target;
  why: string;
}

/** The node of `store` that matters most now; see the module documentation. */
export async function pickNode(store: NetworkStoreName, gatewayPid: number): Promise<Choice> {
  const services = nodeServices(store);
  if (store === "SCYLLA") {
    const points = parseContactPoints(storeConfig("SCYLLA")!.url).hosts;
    const port = Number(points[0].replace(/^.*:/, ""));
    // The driver opens its control connection first, before any pool: the oldest of them.
    const conns = await connectionsOf(gatewayPid, port);
    const hosts = new Set(conns.map((c) => c.host));
    if (hosts.size !== NODES) {
      throw new Error(`the gateway holds CQL connections to ${[...hosts].join(", ") || "no node"}`);
    }
    const control = conns[0].host;
    const index = points.findIndex((p) => p.replace(/:\d+$/, "") === control);
    if (index < 0) throw new Error(`${control} is not a contact point`);
    return {
      target: { store, service: services[index], role: "node" },
      why: `control connection (the gateway's oldest of ${conns.length} CQL connections)`,
    };
  }
  if (store === "ELASTICSEARCH") {
    const shards = await esGet<{ prirep: string; state: string; node: string }[]>(
      "/_cat/shards/words?format=json",
    );
    const primary = shards.find((s) => s.prirep === "p" && s.state === "STARTED");
    const service = primary?.node.replace(/^matrix-/, "");
    if (!service || !services.includes(service)) {
      throw new Error(`no started primary of words on a matrix node (${primary?.node})`);
    }
    return { target: { store, service, role: "node" }, why: "primary shard of words" };
  }
  const { leader } = await streamStatus();
  const node = RABBIT_NODES.find((n) => n.nodename === leader);
  if (!node) throw new Error(`the words stream's leader ${leader} is not a matrix node`);
  return { target: { store, service: node.service, role: "node" }, why: "words stream leader" };
}

/** What both node scenarios measure, once the load stopped. */
async function figures(
  gateway: Gateway,
  run: Run,
  load: MixedLoad,
  sick: NetworkStoreName,
  from: number,
  to: number,
) {
  const samples = load.samples;
  const own = samples.filter((s) => s.store === sick && s.at >= from && s.at - s.ms < to);
  const unavailable = own.filter((s) => s.outcome === UNAVAILABLE).length;
  const reads = await readFigures(gateway, run, [load], [sick]);
  const durability = await checkDurability(gateway.url, load);
  return { samples, own, unavailable, reads, durability };
}

/**
 * Kills (SIGKILL, whole process tree) the node of `store` that matters most,
 * keeps the load going for 10 s, restarts it (`matrix up <node>`) and waits
 * until it is back in the cluster; returns the scenario's row.
 */
export async function loseNode(
  gateway: Gateway,
  stores: readonly StoreName[],
  store: NetworkStoreName,
  run: Run,
): Promise<SummaryRow> {
  const topology = await checkTopology(store);
  const sampler = new ProcessSampler(gateway.pid);
  const load = new MixedLoad({
    url: gateway.url,
    stores,
    connections: CONNECTIONS,
    maxSeconds: 600,
  });
  const t: Record<string, number> = { start: Date.now() };
  let choice: Choice | undefined;
  let restarted = false;
  let readyAfterS = NaN;
  let rejoin = { at: NaN, problem: "" };
  try {
    await sleep(WARM_MS);
    t.before = Date.now();
    await sleep(BEFORE_MS);
    choice = await pickNode(store, gateway.pid);
    t.kill = Date.now();
    await killService(choice.target.service);
    await sleep(FAULT_MS);
    t.restart = Date.now();
    const { readyAt } = await restartService(
      choice.target.service,
      store === "ELASTICSEARCH" ? () => esNodeJoined(choice!.target.service) : undefined,
    );
    restarted = true;
    t.ready = readyAt;
    readyAfterS = (readyAt - t.restart) / 1000;
    rejoin = await waitTopology(store, readyAt + RECOVERY_MS + RECOVERY_GRACE_MS);
    t.rejoined = rejoin.at;
    await sleep(TAIL_MS);
    t.end = Date.now();
  } finally {
    await load.stop();
    sampler.stop();
    if (choice && !restarted) await restartService(choice.target.service).catch(() => {});
  }
  const target = choice!.target;
  const recovered = Number.isFinite(t.rejoined) ? t.rejoined : t.end;
  const v = judgeFault(
    load.samples,
    stores,
    store,
    sampler,
    { start: t.start, before: t.before, fault: t.kill, turn: t.restart, recovered, end: t.end },
    { before: "before the kill", sick: "down", phases: ["down", "restarting"] },
    0,
    "node",
  );
  const f = await figures(gateway, run, load, store, t.kill, recovered);
  const rejoinedAfter = (t.rejoined - t.ready) / 1000;
  const breaches = [...v.breaches, ...f.durability.problems];
  if (!(rejoinedAfter <= RECOVERY_MS / 1000)) {
    breaches.push(
      `${target.service} back in the ${store} cluster ${
        Number.isFinite(rejoinedAfter) ? `${rejoinedAfter.toFixed(1)} s` : "never"
      } after ready (limit ${RECOVERY_MS / 1000} s; ${rejoin.problem})`,
    );
  }
  return {
    scenario: `kill -9 ${target.service} (${store} node: ${choice!.why.replace(/ \(.*/, "")})`,
    requests: f.samples.length,
    failures: v.failures,
    p99: describeWorst(v.others.worst),
    lost: f.durability.lost + f.durability.duplicated,
    changes: f.durability.changes,
    changesByStore: f.durability.changesByStore,
    reads: f.reads.reads,
    waits: f.reads.waits,
    notes: `${topology}; chose ${target.service}: ${choice!.why}; ${store}: ${f.own.length} ` +
      `requests from the kill until rejoined, ${f.unavailable} STORE_UNAVAILABLE (slowest ${
        ms(Math.max(0, ...f.own.map((s) => s.ms)))
      }); ${target.service} ready ${readyAfterS.toFixed(1)} s after restart, back in the cluster ${
        Number.isFinite(rejoinedAfter) ? rejoinedAfter.toFixed(1) : "never"
      } s after ready; ${v.cpu}; ${f.durability.acked} acked adds checked (${f.durability.deleted} deleted)`,
    breaches,
  };
}

/**
 * SIGSTOPs the node of `store` that matters most for 10 s under the load,
 * then SIGCONTs it and waits until the cluster is whole; returns the row.
 */
export async function stallNode(
  gateway: Gateway,
  stores: readonly StoreName[],
  store: NetworkStoreName,
  run: Run,
): Promise<SummaryRow> {
  const topology = await checkTopology(store);
  const sampler = new ProcessSampler(gateway.pid);
  const load = new MixedLoad({
    url: gateway.url,
    stores,
    connections: CONNECTIONS,
    maxSeconds: 300,
  });
  const t: Record<string, number> = { start: Date.now() };
  let choice: Choice | undefined;
  let paused: number[] = [];
  let rejoin = { at: NaN, problem: "" };
  try {
    await sleep(WARM_MS);
    t.before = Date.now();
    await sleep(BEFORE_MS);
    choice = await pickNode(store, gateway.pid);
    t.stop = Date.now();
    paused = await pauseService(choice.target.service);
    await sleep(FAULT_MS);
    resumeDatabase(paused);
    paused = [];
    t.cont = Date.now();
    rejoin = await waitTopology(store, t.cont + RECOVERY_MS + RECOVERY_GRACE_MS);
    t.rejoined = rejoin.at;
    await sleep(TAIL_MS);
    t.end = Date.now();
  } finally {
    resumeDatabase(paused);
    await load.stop();
    sampler.stop();
  }
  const target = choice!.target;
  const recovered = Number.isFinite(t.rejoined) ? t.rejoined : t.end;
  const v = judgeFault(
    load.samples,
    stores,
    store,
    sampler,
    { start: t.start, before: t.before, fault: t.stop, turn: t.cont, recovered, end: t.end },
    { before: "before the stall", sick: "stalled", phases: ["stalled", "resuming"] },
    0,
    "node",
  );
  const before = sampler.peak(t.before, t.stop);
  const during = sampler.peak(t.stop, recovered);
  const f = await figures(gateway, run, load, store, t.stop, recovered);
  const breaches = [...v.breaches, ...f.durability.problems];
  if (during.sockets > before.sockets + SOCKET_ALLOWANCE) {
    breaches.push(`gateway sockets ${before.sockets} → ${during.sockets} while stalled`);
  }
  if (during.rssMiB > before.rssMiB * RSS_FACTOR) {
    breaches.push(
      `gateway RSS ${before.rssMiB.toFixed(0)} → ${during.rssMiB.toFixed(0)} MiB while stalled`,
    );
  }
  const slow = windowOf(load.samples, t.stop, recovered, store).filter((s) =>
    s.ms > budgetMs(store) + SCHEDULING_MS
  );
  const rejoinedAfter = (t.rejoined - t.cont) / 1000;
  if (!(rejoinedAfter <= RECOVERY_MS / 1000)) {
    breaches.push(
      `${target.service} not whole in the ${store} cluster ${
        RECOVERY_MS / 1000
      } s after SIGCONT (${rejoin.problem})`,
    );
  }
  return {
    scenario: `SIGSTOP 10 s ${target.service} (${store} node: ${choice!.why.replace(/ \(.*/, "")})`,
    requests: f.samples.length,
    failures: v.failures,
    p99: describeWorst(v.others.worst),
    lost: f.durability.lost + f.durability.duplicated,
    changes: f.durability.changes,
    changesByStore: f.durability.changesByStore,
    reads: f.reads.reads,
    waits: f.reads.waits,
    notes: `${topology}; chose ${target.service}: ${choice!.why}; ${store}: ${f.own.length} ` +
      `requests from the stall until whole, ${f.unavailable} STORE_UNAVAILABLE, ${slow.length} ` +
      `slower than ${ms(budgetMs(store) + SCHEDULING_MS)} (slowest ${
        ms(Math.max(0, ...f.own.map((s) => s.ms)))
      }); whole ${
        Number.isFinite(rejoinedAfter) ? rejoinedAfter.toFixed(1) : "never"
      } s after SIGCONT; gateway peak sockets ${before.sockets} → ${during.sockets}, peak RSS ${
        before.rssMiB.toFixed(0)
      } → ${
        during.rssMiB.toFixed(0)
      } MiB; ${v.cpu}; ${f.durability.acked} acked adds checked (${f.durability.deleted} deleted)`,
    breaches,
  };
}
