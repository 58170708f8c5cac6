/**
 * The matrix's two topologies without starting anything: which services
 * `up` selects, that every cluster node loads, starts after its primary,
 * serves the same store on a port of its own, and hands the gateway a
 * `<STORE>_READ_URL` (and a `MATRIX_<STORE>_READ_TLS_URL`).
 */
import assert from "node:assert/strict";
import {
  ALL_SERVICE_NAMES,
  CLUSTER_SERVICE_NAMES,
  dependentsOf,
  PRIMARY_OF,
  SERVICE_NAMES,
} from "../scripts/matrix/paths.ts";
import { load } from "../scripts/matrix/state.ts";
import { servicesOf, upSelection } from "../scripts/matrix/topology.ts";
import { MATRIX, type MatrixPaths } from "../scripts/matrix/types.ts";

const PATHS: MatrixPaths = {
  cache: "/cache",
  root: "/root",
  data: "/root/data/x",
  log: "/root/logs/x.log",
  certs: "/root/certs",
  user: "gtmatrix",
};

Deno.test("up selects the single topology by default and adds the cluster nodes with --cluster", () => {
  assert.deepEqual(upSelection([], false), [...SERVICE_NAMES]);
  assert.deepEqual(upSelection([], true), [...SERVICE_NAMES, ...CLUSTER_SERVICE_NAMES]);
  assert.deepEqual(servicesOf("single"), [...SERVICE_NAMES]);
  assert.deepEqual(servicesOf("cluster"), upSelection([], true));
});

Deno.test("up --cluster with names brings each named primary's nodes, in start order", () => {
  assert.deepEqual(upSelection(["redis", "postgresql"], true), [
    "postgresql",
    "redis",
    ...dependentsOf("postgresql"),
    ...dependentsOf("redis"),
  ]);
  assert.deepEqual(upSelection(["redis"], false), ["redis"]);
  assert.deepEqual(upSelection(["postgresql-standby", "postgresql"], false), [
    "postgresql",
    "postgresql-standby",
  ]);
});

Deno.test("every cluster node starts after its primary", () => {
  for (const node of CLUSTER_SERVICE_NAMES) {
    const primary = PRIMARY_OF[node];
    assert.ok(ALL_SERVICE_NAMES.indexOf(primary) < ALL_SERVICE_NAMES.indexOf(node), node);
  }
});

/** Cluster nodes that are read replicas of their primary; the others are further members of a cluster. */
const REPLICAS = ["postgresql-standby", "mariadb-replica", "redis-replica"];

for (const node of CLUSTER_SERVICE_NAMES.filter((n) => REPLICAS.includes(n))) {
  Deno.test(`${node} loads, serves its primary's store, and gives a read URL`, async () => {
    const [l, p] = [await load(node), await load(PRIMARY_OF[node])];
    assert.ok(l.svc, l.error);
    assert.ok(p.svc, p.error);
    assert.equal(l.svc.name, node);
    assert.equal(l.svc.store, p.svc.store);
    const env = l.svc.env({ ...PATHS, data: `/root/data/${node}` });
    const primaryEnv = p.svc.env({ ...PATHS, data: `/root/data/${PRIMARY_OF[node]}` });
    const store = l.svc.store;
    assert.ok(env[`${store}_READ_URL`], `${node} gives ${store}_READ_URL`);
    assert.ok(env[`MATRIX_${store}_READ_TLS_URL`], `${node} gives MATRIX_${store}_READ_TLS_URL`);
    assert.notEqual(
      new URL(env[`${store}_READ_URL`]).port,
      new URL(primaryEnv[`${store}_URL`]).port,
    );
    // The node's own port is what `up` adopts an unmanaged server by.
    const port = (MATRIX.ports as Record<string, number>)[node];
    assert.equal(new URL(env[`${store}_READ_URL`]).port, String(port));
  });
}

for (const node of CLUSTER_SERVICE_NAMES.filter((n) => !REPLICAS.includes(n))) {
  Deno.test(`${node} loads, serves its first node's store, and joins its URL list`, async () => {
    const [l, p] = [await load(node), await load(PRIMARY_OF[node])];
    assert.ok(l.svc, l.error);
    assert.ok(p.svc, p.error);
    assert.equal(l.svc.name, node);
    assert.equal(l.svc.store, p.svc.store);
    const store = l.svc.store;
    const env = l.svc.env({ ...PATHS, data: `/root/data/${node}` });
    const primaryEnv = p.svc.env({ ...PATHS, data: `/root/data/${PRIMARY_OF[node]}` });
    assert.ok(p.svc.joinedEnv?.includes(`${store}_URL`), `${store}_URL lists every node`);
    assert.ok(env[`${store}_URL`], `${node} gives its ${store}_URL`);
    assert.notEqual(env[`${store}_URL`], primaryEnv[`${store}_URL`]);
  });
}

Deno.test("matrix ports are all distinct", () => {
  const ports = Object.values(MATRIX.ports);
  assert.equal(new Set(ports).size, ports.length);
});
