import { assertEquals, assertOk, assertThrows } from "./support/assert.ts";
import { ConfigError, parseConfig } from "../server/config.ts";

const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const files = (path: string) => {
  if (path === "/ca.pem") return PEM;
  if (path === "/not-a-cert.txt") return "hello";
  throw new Deno.errors.NotFound(path);
};

Deno.test("defaults: port 8000, SQLite at ./data/words.db, only SQLite configured", () => {
  const c = parseConfig({}, files);
  assertEquals(c.port, 8000);
  assertEquals(c.sqlitePath, "./data/words.db");
  assertEquals(c.stores, {});
  assertEquals(c.graphiql, true);
});

Deno.test("a store is configured by its URL, and its CA turns on TLS", () => {
  const c = parseConfig(
    { POSTGRESQL_URL: "postgres://u:p@db:5432/grand_tour", POSTGRESQL_CA_CERT: "/ca.pem" },
    files,
  );
  assertEquals(c.stores.POSTGRESQL?.url, "postgres://u:p@db:5432/grand_tour");
  assertEquals(c.stores.POSTGRESQL?.caCert, PEM);
});

Deno.test("the classic COMPOSE_<STORE>_URL and PATH_TO_<STORE>_CERT names work; new names win", () => {
  const c = parseConfig({
    COMPOSE_MONGODB_URL: "mongodb://old:1/",
    PATH_TO_MONGODB_CERT: "/ca.pem",
    COMPOSE_REDIS_URL: "redis://old:1",
    REDIS_URL: "redis://new:2",
  }, files);
  assertEquals(c.stores.MONGODB?.url, "mongodb://old:1/");
  assertEquals(c.stores.MONGODB?.caCert, PEM);
  assertEquals(c.stores.REDIS?.url, "redis://new:2");
});

Deno.test("SCYLLA_URL takes several contact points and the replication settings", () => {
  const c = parseConfig({
    SCYLLA_URL: "10.0.0.1:9042, 10.0.0.2:9042,cassandra://u:p@h:9042",
    SCYLLA_REPLICATION_FACTOR: "3",
    SCYLLA_DATACENTER: "dc-east",
  }, files);
  assertEquals(c.stores.SCYLLA?.options, { replicationFactor: "3", datacenter: "dc-east" });
});

Deno.test("malformed values are refused with a message naming the variable, never the secret", () => {
  const cases: [Record<string, string>, string][] = [
    [{ PORT: "eighty" }, "PORT"],
    [{ PORT: "70000" }, "PORT"],
    [{ GRAPHIQL: "maybe" }, "GRAPHIQL"],
    [{ REDIS_URL: "not a url with secret-pw" }, "REDIS_URL"],
    [{ SCYLLA_URL: "host:port:extra" }, "SCYLLA_URL"],
    [{ MYSQL_URL: "mysql://u:p@h/db", MYSQL_CA_CERT: "/missing.pem" }, "MYSQL_CA_CERT"],
    [{ MYSQL_URL: "mysql://u:p@h/db", MYSQL_CA_CERT: "/not-a-cert.txt" }, "MYSQL_CA_CERT"],
    [{ REDIS_CA_CERT: "/ca.pem" }, "REDIS_CA_CERT"],
    [{ SCYLLA_URL: "h:9042", SCYLLA_REPLICATION_FACTOR: "0" }, "SCYLLA_REPLICATION_FACTOR"],
  ];
  for (const [env, name] of cases) {
    const e = assertThrows(() => parseConfig(env, files), ConfigError);
    assertOk(e.message.includes(name), `${e.message} should name ${name}`);
    assertOk(!e.message.includes("secret-pw"), e.message);
  }
});
