/**
 * compose.yaml must stay interchangeable with `deno task matrix up`: every
 * store has a compose service that publishes the matrix port on 127.0.0.1,
 * with the matrix credentials, and the env block it documents is what the
 * matrix writes. Docker is not needed: this only parses the file.
 */
import assert from "node:assert/strict";
import { parse } from "yaml";
import { MATRIX, type MatrixPaths, type Service } from "../scripts/matrix/types.ts";

interface ComposeService {
  image?: string;
  command?: string | string[];
  environment?: Record<string, unknown> | string[];
  ports?: (string | number | { target: number; published?: string | number; host_ip?: string })[];
}

interface Compose {
  services: Record<string, ComposeService>;
  "x-env-matrix": Record<string, string>;
  configs: Record<string, { content: string }>;
}

const compose = parse(
  await Deno.readTextFile(new URL("../compose.yaml", import.meta.url)),
) as Compose;

/** How each store of the gateway maps to a compose service and a matrix service. */
const STORES = [
  { store: "MONGODB", compose: "mongo", target: 27017, matrix: "ferretdb" },
  { store: "POSTGRESQL", compose: "postgres", target: 5432, matrix: "postgresql" },
  { store: "MYSQL", compose: "mysql", target: 3306, matrix: "mariadb" },
  { store: "SCYLLA", compose: "scylla", target: 9042, matrix: "cassandra" },
  { store: "ELASTICSEARCH", compose: "elasticsearch", target: 9200, matrix: "elasticsearch" },
  { store: "REDIS", compose: "redis", target: 6379, matrix: "redis" },
  { store: "RABBITMQ", compose: "rabbitmq", target: 5672, matrix: "rabbitmq" },
] as const;

interface Published {
  hostIp: string;
  published: number;
  target: number;
}

/** Normalises compose short ("127.0.0.1:15432:5432") and long port syntax. */
function published(svc: ComposeService): Published[] {
  return (svc.ports ?? []).map((p) => {
    if (typeof p === "object") {
      return { hostIp: p.host_ip ?? "", published: Number(p.published), target: Number(p.target) };
    }
    const parts = String(p).replace(/\/(tcp|udp)$/, "").split(":");
    const target = Number(parts.pop());
    const pub = Number(parts.pop() ?? Number.NaN);
    return { hostIp: parts.join(":"), published: pub, target };
  });
}

function environment(svc: ComposeService | undefined): Record<string, string> {
  const env = svc?.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(env.map((e) => [e.split("=")[0], e.split("=").slice(1).join("=")]));
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)]));
}

function commandOf(svc: ComposeService | undefined): string[] {
  const c = svc?.command ?? [];
  return Array.isArray(c) ? c.map(String) : c.split(/\s+/);
}

const PATHS: MatrixPaths = {
  cache: "/cache",
  root: "/root",
  data: "/root/data/x",
  log: "/root/logs/x.log",
  certs: "/root/certs",
  user: "gtmatrix",
};

async function matrixEnv(name: string): Promise<Record<string, string>> {
  const mod = await import(`../scripts/matrix/${name}.ts`);
  return (mod.default as Service).env({ ...PATHS, data: `/root/data/${name}` });
}

for (const s of STORES) {
  Deno.test(`compose publishes ${s.store} on 127.0.0.1 at the matrix port of ${s.matrix}`, () => {
    const svc = compose.services[s.compose];
    assert.ok(svc, `compose.yaml has no service "${s.compose}"`);
    assert.ok(svc.image, `${s.compose} names an image`);
    const port = published(svc).find((p) => p.target === s.target);
    assert.ok(port, `${s.compose} publishes container port ${s.target}`);
    assert.equal(port.published, MATRIX.ports[s.matrix]);
    assert.equal(port.hostIp, MATRIX.host);
  });
}

Deno.test("compose services publish distinct host ports, all on 127.0.0.1", () => {
  const all = Object.values(compose.services).flatMap(published);
  assert.equal(new Set(all.map((p) => p.published)).size, all.length);
  for (const p of all) assert.equal(p.hostIp, MATRIX.host);
});

Deno.test("compose gives PostgreSQL, MySQL, MongoDB and RabbitMQ the matrix user and password", () => {
  const expect: [string, string, string][] = [
    ["postgres", "POSTGRES_USER", "POSTGRES_PASSWORD"],
    ["mysql", "MYSQL_USER", "MYSQL_PASSWORD"],
    ["mongo", "MONGO_APP_USER", "MONGO_APP_PASSWORD"],
    ["rabbitmq", "RABBITMQ_DEFAULT_USER", "RABBITMQ_DEFAULT_PASS"],
  ];
  for (const [service, user, password] of expect) {
    const env = environment(compose.services[service]);
    assert.equal(env[user], MATRIX.user, `${service} ${user}`);
    assert.equal(env[password], MATRIX.password, `${service} ${password}`);
  }
  assert.equal(environment(compose.services.mongo).MONGO_INITDB_ROOT_PASSWORD, MATRIX.password);
  assert.match(compose.configs["mongo-user"].content, /getSiblingDB\("grand_tour"\)\.createUser/);
  assert.equal(environment(compose.services.postgres).POSTGRES_DB, "grand_tour");
  assert.equal(environment(compose.services.mysql).MYSQL_DATABASE, "grand_tour");
});

Deno.test("compose Redis has only the matrix ACL user, with the matrix password", () => {
  const cmd = commandOf(compose.services.redis);
  const users = cmd.flatMap((a, i) => (a === "--user" ? [cmd.slice(i + 1, i + 3)] : []));
  assert.deepEqual(users.find(([u]) => u === "default"), ["default", "off"]);
  const i = cmd.indexOf(MATRIX.user);
  assert.ok(i > 0 && cmd[i - 1] === "--user", "a --user grand_tour directive");
  assert.equal(cmd[i + 1], "on");
  assert.equal(cmd[i + 2], `>${MATRIX.password}`);
});

Deno.test("compose Scylla requires passwords and gets the matrix role created", () => {
  const cmd = commandOf(compose.services.scylla);
  assert.ok(cmd.includes("--authenticator=PasswordAuthenticator"));
  const env = environment(compose.services["scylla-init"]);
  assert.equal(env.CQL_USER, MATRIX.user);
  assert.equal(env.CQL_PASSWORD, MATRIX.password);
  assert.match(commandOf(compose.services["scylla-init"]).join(" "), /CREATE ROLE IF NOT EXISTS/);
});

Deno.test("compose Elasticsearch is a single node without security, like the matrix", () => {
  const svc = compose.services.elasticsearch;
  const env = environment(svc);
  assert.equal(env["discovery.type"], "single-node");
  assert.equal(env["xpack.security.enabled"], "false");
  assert.match(svc.image ?? "", /:8\.19\.\d+$/);
});

for (const s of STORES) {
  Deno.test(`compose's x-env-matrix has the ${s.store} variables the matrix writes, same values`, async () => {
    const written = await matrixEnv(s.matrix);
    const plain = Object.entries(written).filter(([k]) => !k.startsWith("MATRIX_"));
    assert.ok(plain.length > 0, `${s.matrix}.env() gives the ${s.store} variables`);
    for (const [k, v] of plain) assert.equal(compose["x-env-matrix"][k], v, k);
  });
}

Deno.test("compose's x-env-matrix names only variables the matrix writes", async () => {
  const known = new Set<string>();
  for (const s of STORES) for (const k of Object.keys(await matrixEnv(s.matrix))) known.add(k);
  for (const k of Object.keys(compose["x-env-matrix"])) assert.ok(known.has(k), k);
});
