/**
 * The matrix's cluster topology is what the gateway counts on: three UN
 * Cassandra nodes holding the gateway's keyspace with replication factor 3,
 * three Elasticsearch nodes with one replica of the words index's shard
 * assigned, and the RabbitMQ words stream replicated on all three brokers.
 * Each opens the store first, so what it checks is what the store made.
 */
import assert from "node:assert/strict";
import cassandra from "cassandra-driver";
import { open as openElasticsearch } from "../../stores/elasticsearch.ts";
import { open as openRabbit } from "../../stores/rabbitmq.ts";
import { open as openScylla, parseContactPoints } from "../../stores/scylla.ts";
import type { OpenStore, StoreConfig } from "../../stores/types.ts";
import { matrixDirs, servicePaths } from "../../scripts/matrix/paths.ts";
import { NODES as RABBIT_NODES } from "../../scripts/matrix/rabbitmq.ts";
import { streamMembers } from "../../scripts/matrix/rabbitmq_cli.ts";
import { CLUSTER_NODES, clusterTest } from "../support/cluster.ts";

/** Opens the store once (creating its keyspace, index or stream) and closes it. */
async function touch(open: OpenStore, config: StoreConfig): Promise<void> {
  const store = await open(config);
  await store.ping();
  await store.close();
}

clusterTest("SCYLLA", "three UN nodes and the keyspace at replication factor 3", async (c) => {
  await touch(openScylla, c);
  const points = parseContactPoints(c.url);
  assert.equal(points.hosts.length, CLUSTER_NODES);
  const datacenter = c.options.datacenter ?? "datacenter1";
  for (const host of points.hosts) {
    const { AllowListPolicy, DCAwareRoundRobinPolicy } = cassandra.policies.loadBalancing;
    const raw = new cassandra.Client({
      contactPoints: [host],
      localDataCenter: datacenter,
      authProvider: new cassandra.auth.PlainTextAuthProvider(points.username!, points.password!),
      policies: {
        loadBalancing: new AllowListPolicy(new DCAwareRoundRobinPolicy(datacenter), [host]),
      },
    });
    try {
      const gossip = await raw.execute(
        "SELECT address, status, status_with_port FROM system_views.gossip_info",
      );
      const states = gossip.rows.map((r) =>
        String(r.get("status_with_port") ?? r.get("status")).split(",")[0]
      );
      assert.deepEqual(states, Array(CLUSTER_NODES).fill("NORMAL"), `gossip as ${host} sees it`);
      assert.equal(raw.getState().getConnectedHosts().length, 1);
      const ks = await raw.execute(
        "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = 'grand_tour'",
      );
      const replication = ks.first().get("replication") as Record<string, string>;
      assert.equal(replication[datacenter], String(CLUSTER_NODES), `grand_tour as ${host} sees it`);
    } finally {
      await raw.shutdown();
    }
  }
  assert.equal(c.options.replicationFactor, String(CLUSTER_NODES));
});

clusterTest(
  "ELASTICSEARCH",
  "three nodes, and the words shard with one replica",
  async (c, urls) => {
    await touch(openElasticsearch, c);
    for (const url of urls) {
      const res = await fetch(`${url}/_cluster/health/words?wait_for_status=green&timeout=30s`);
      const health = await res.json();
      assert.equal(health.number_of_nodes, CLUSTER_NODES, `${url} counts every node`);
      assert.equal(health.status, "green", `${url}: the replica is assigned`);
      assert.equal(health.active_shards, 2, `${url}: one primary and one replica`);
    }
    const settings = await (await fetch(`${urls[0]}/words/_settings`)).json();
    assert.equal(settings.words.settings.index.number_of_replicas, "1");
    const nodes = await (await fetch(`${urls[0]}/_cat/nodes?format=json&h=name,node.role`)).json();
    assert.equal(nodes.length, CLUSTER_NODES);
    for (const n of nodes) assert.match(n["node.role"], /m/, `${n.name} is master-eligible`);
  },
);

clusterTest(
  "RABBITMQ",
  "the words stream has a replica on each of the three brokers",
  async (c) => {
    const viewPath = await Deno.makeTempFile({ suffix: ".db" });
    try {
      await touch(openRabbit, { ...c, options: { ...c.options, viewPath } });
    } finally {
      await Deno.remove(viewPath).catch(() => {});
    }
    const first = RABBIT_NODES[0];
    const members = await streamMembers(
      "words",
      first.nodename,
      servicePaths(matrixDirs(), "rabbitmq"),
    );
    assert.deepEqual(members?.toSorted(), RABBIT_NODES.map((n) => n.nodename).toSorted());
  },
);
