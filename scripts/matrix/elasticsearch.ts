/**
 * Elasticsearch for the matrix: the integration-test distribution Elastic
 * publishes on Maven Central (`org.elasticsearch.distribution.integ-test-zip`),
 * run on the system Java 17 on 127.0.0.1, plain HTTP: node 1 (`elasticsearch`)
 * alone, or with `elasticsearch-2` and `elasticsearch-3` as a cluster of
 * three master-eligible nodes ({@linkcode NODES}).
 *
 * Node 1 bootstraps a cluster of its own the first time its data directory is
 * used (`cluster.initial_master_nodes` names only it) and otherwise starts
 * from its stored cluster state, also one a `discovery.type: single-node`
 * node 1 wrote; nodes 2 and 3 never bootstrap, they find node 1 through
 * `discovery.seed_hosts` (every node's transport port) and join it. Stopping
 * node 2 or 3 with `down` first excludes it from the voting configuration, so
 * whatever stays keeps a quorum, node 1 alone included; starting it again
 * clears the exclusions.
 *
 * That zip carries only the transport, x-pack-core, x-pack-security and apm
 * modules (no bundled JDK, no geoip, no ML), so nothing in it phones home
 * once telemetry is off. Security is switched off explicitly: the matrix
 * serves Elasticsearch over plain `http://` without credentials.
 *
 * Layout under `paths.data`: `config/` (a per-data-dir copy of the
 * distribution's config, because Elasticsearch writes its keystore there),
 * `data/`, `logs/` (server logs and GC log) and `tmp/` (ES_TMPDIR).
 *
 * @module
 */
import { run, spawnDetached } from "./proc.ts";
import { MATRIX, type MatrixPaths, type Service } from "./types.ts";
import { aptInstall } from "./apt.ts";

const VERSION = "8.19.1";
/**
 * `ELASTICSEARCH_TIMEOUT_MS` of the cluster topology: the gateway's budget
 * per Elasticsearch call, above the time the cluster takes to elect a new
 * master and promote a replica when it loses the node that was both.
 */
export const CLUSTER_TIMEOUT_MS = 5_000;
const ARTIFACT = `org.elasticsearch.distribution.integ-test-zip:elasticsearch:${VERSION}:zip`;

/** One node of the matrix's Elasticsearch. */
interface EsNode {
  /** The matrix service: "elasticsearch", "elasticsearch-2", … */
  service: string;
  /** `node.name`. */
  name: string;
  http: number;
  transport: number;
  heap: string;
}

/** The three nodes; node 1 is the default topology's single node. */
export const NODES: readonly EsNode[] = [1, 2, 3].map((n) => ({
  service: n === 1 ? "elasticsearch" : `elasticsearch-${n}`,
  name: n === 1 ? "matrix-elasticsearch" : `matrix-elasticsearch-${n}`,
  http: MATRIX.ports.elasticsearch + n - 1,
  transport: MATRIX.ports.elasticsearchTransport + n - 1,
  heap: "512m",
}));

function baseUrl(node: EsNode): string {
  return `http://${MATRIX.host}:${node.http}`;
}

/** `${paths.cache}/elasticsearch`: the zip and its unpacked copy. */
function cacheDir(paths: MatrixPaths): string {
  return `${paths.cache}/elasticsearch`;
}

/** The unpacked distribution (ES_HOME), read-only for the server. */
function home(paths: MatrixPaths): string {
  return `${cacheDir(paths)}/elasticsearch-${VERSION}`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function onPath(cmd: string): Promise<boolean> {
  try {
    await run("sh", ["-c", `command -v ${cmd}`]);
    return true;
  } catch {
    return false;
  }
}

/** A Java 17 home: Elasticsearch 8.19 supports 17+, and 17 is what Debian 12 ships. */
async function javaHome(): Promise<string | undefined> {
  const candidates = ["/usr/lib/jvm/java-17-openjdk-amd64", "/usr/lib/jvm/java-17-openjdk-arm64"];
  try {
    for await (const e of Deno.readDir("/usr/lib/jvm")) {
      if (/^(java-)?17|-17-|openjdk-17/.test(e.name)) candidates.push(`/usr/lib/jvm/${e.name}`);
    }
  } catch {
    // no /usr/lib/jvm yet
  }
  for (const c of candidates) {
    if (await exists(`${c}/bin/java`)) return c;
  }
  return undefined;
}

/**
 * Settings written to the per-data-dir elasticsearch.yml on every start.
 * `bootstrap`: node 1 on a data directory without cluster state names itself
 * the initial master (set later, it would be ignored, and only warned about).
 */
function settings(
  node: EsNode,
  paths: MatrixPaths,
  bootstrap: boolean,
): Record<string, string | boolean | number | string[]> {
  return {
    "cluster.name": "grand-tour-matrix",
    "node.name": node.name,
    "discovery.seed_hosts": NODES.map((n) => `${MATRIX.host}:${n.transport}`),
    ...(bootstrap ? { "cluster.initial_master_nodes": [node.name] } : {}),
    "network.host": MATRIX.host,
    "http.port": node.http,
    "transport.port": node.transport,
    "path.data": `${paths.data}/data`,
    "path.logs": `${paths.data}/logs`,
    // The integ-test zip is served as plain HTTP without users.
    "xpack.security.enabled": false,
    // Nothing may phone home (the APM agent is the only module that could).
    "telemetry.metrics.enabled": false,
    "telemetry.tracing.enabled": false,
    // A shared, possibly crowded disk must not turn indices read-only.
    "cluster.routing.allocation.disk.threshold_enabled": false,
  };
}

/** The distribution's jvm.options with every relative path pointed into `paths.data`. */
function jvmOptions(original: string, paths: MatrixPaths): string {
  return original
    .replace("-XX:+HeapDumpOnOutOfMemoryError", "-XX:-HeapDumpOnOutOfMemoryError")
    .replace("-XX:HeapDumpPath=data", `-XX:HeapDumpPath=${paths.data}/data`)
    .replace("-XX:ErrorFile=logs/", `-XX:ErrorFile=${paths.data}/logs/`)
    .replace(
      /file=logs\/gc\.log:(\S*?)filecount=\d+,filesize=\d+m/,
      (_m, mid) => `file=${paths.data}/logs/gc.log:${mid}filecount=2,filesize=16m`,
    );
}

/** A request to `node`: its body's text (maybe empty) when it answered 2xx, else undefined. */
async function request(node: EsNode, method: string, path: string): Promise<string | undefined> {
  const res = await fetch(`${baseUrl(node)}${path}`, {
    method,
    signal: AbortSignal.timeout(35_000),
  });
  const text = await res.text();
  return res.ok ? text : undefined;
}

/** Runs `fn` against the first other node that answers. */
async function onOtherNode(self: EsNode, fn: (n: EsNode) => Promise<unknown>): Promise<void> {
  let last: unknown = new Error("no other node answers");
  for (const n of NODES.filter((n) => n !== self)) {
    try {
      if ((await fn(n)) !== undefined) return;
    } catch (e) {
      last = e;
    }
  }
  throw last;
}

async function install(paths: MatrixPaths): Promise<void> {
  const missing: string[] = [];
  if (!(await javaHome())) missing.push("openjdk-17-jre-headless");
  if (!(await onPath("mvn"))) missing.push("maven");
  if (!(await onPath("unzip"))) missing.push("unzip");
  if (missing.length > 0) {
    await aptInstall(paths, missing);
  }
  const dir = cacheDir(paths);
  await Deno.mkdir(dir, { recursive: true });
  const zip = `${dir}/elasticsearch-${VERSION}.zip`;
  if (!(await exists(zip))) {
    await run("mvn", [
      "-B",
      "-q",
      "dependency:copy",
      `-Dartifact=${ARTIFACT}`,
      `-DoutputDirectory=${dir}`,
    ]);
  }
  const marker = `${home(paths)}/.unpacked`;
  if (!(await exists(marker))) {
    const tmp = `${dir}/unpack-${Deno.pid}`;
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    await run("unzip", ["-q", zip, "-d", tmp]);
    await Deno.remove(home(paths), { recursive: true }).catch(() => {});
    await Deno.rename(`${tmp}/elasticsearch-${VERSION}`, home(paths));
    await Deno.remove(tmp, { recursive: true });
    // The server runs as paths.user and only reads ES_HOME.
    await run("chmod", ["-R", "a+rX", home(paths)]);
    await Deno.writeTextFile(marker, `${ARTIFACT}\n`);
  }
}

async function start(node: EsNode, paths: MatrixPaths): Promise<number> {
  const java = await javaHome();
  if (!java) throw new Error("no Java 17 found under /usr/lib/jvm; run install first");
  const d = paths.data;
  for (const sub of ["data", "logs", "tmp"]) await Deno.mkdir(`${d}/${sub}`, { recursive: true });
  const conf = `${d}/config`;
  if (!(await exists(`${conf}/elasticsearch.yml`))) {
    await run("cp", ["-R", `${home(paths)}/config`, conf]);
  }
  const bootstrap = node.service === "elasticsearch" && !(await exists(`${d}/data/_state`));
  const yml = Object.entries(settings(node, paths, bootstrap))
    .map(([k, v]) => `${k}: ${JSON.stringify(v)}`);
  await Deno.writeTextFile(
    `${conf}/elasticsearch.yml`,
    `# Written by scripts/matrix/elasticsearch.ts on every start.\n${yml.join("\n")}\n`,
  );
  const jvm = await Deno.readTextFile(`${home(paths)}/config/jvm.options`);
  await Deno.writeTextFile(`${conf}/jvm.options`, jvmOptions(jvm, paths));
  await run("chown", ["-R", `${paths.user}:${paths.user}`, d]);
  return await spawnDetached(`${home(paths)}/bin/elasticsearch`, [], {
    user: paths.user,
    log: paths.log,
    cwd: d,
    env: {
      ES_JAVA_HOME: java,
      ES_PATH_CONF: conf,
      ES_TMPDIR: `${d}/tmp`,
      // A fixed heap, touched only as it is used (Elasticsearch pre-touches
      // the whole heap by default, which costs all of it in RSS at once).
      ES_JAVA_OPTS: `-Xms${node.heap} -Xmx${node.heap} -XX:-AlwaysPreTouch`,
    },
  });
}

/**
 * True once `node` answers cluster health yellow or green as a member of a
 * cluster with a master and, for node k, at least k nodes.
 */
async function ready(node: EsNode, paths: MatrixPaths): Promise<boolean> {
  try {
    const k = NODES.indexOf(node) + 1;
    // Once there is a cluster, a shard whose only in-sync copy is on a node still down is red
    // until that node is back, which waits for this one: a node that answered with a master is up.
    const acceptRed = await exists(`${paths.root}/data/${NODES[1].service}/data/_state`);
    const res = await fetch(
      `${baseUrl(node)}/_cluster/health?wait_for_status=${
        acceptRed ? "red" : "yellow"
      }&wait_for_nodes=%3E%3D${k}&timeout=1s`,
      { signal: AbortSignal.timeout(3_000) },
    );
    if (!res.ok) {
      await res.body?.cancel();
      return false;
    }
    const health = await res.json() as { status?: string; number_of_nodes?: number };
    return (health.status === "yellow" || health.status === "green" || acceptRed) &&
      (health.number_of_nodes ?? 0) >= k;
  } catch {
    return false;
  }
}

function service(node: EsNode): Service {
  const first = node === NODES[0];
  return {
    name: node.service,
    store: "ELASTICSEARCH",
    version: VERSION,
    install,
    async start(paths) {
      // Back after `down`: it may vote again.
      if (!first) {
        await onOtherNode(
          node,
          (n) => request(n, "DELETE", "/_cluster/voting_config_exclusions?wait_for_removal=false"),
        );
      }
      return await start(node, paths);
    },
    ready: (paths) => ready(node, paths),
    // A cluster gets a budget per call above its failover: losing the elected master that also
    // held the primary held writes 2.3 s and more under the fault suite's load (docs/reliability.md).
    env: () => ({
      ELASTICSEARCH_URL: baseUrl(node),
      ...(first ? {} : { ELASTICSEARCH_TIMEOUT_MS: String(CLUSTER_TIMEOUT_MS) }),
    }),
    ...(first ? { joinedEnv: ["ELASTICSEARCH_URL"] } : {
      after: NODES[NODES.indexOf(node) - 1].service,
      // Leaves the voting configuration first, so the nodes that stay keep a quorum,
      // and waits until every shard has all its copies, so a node stopped next still leaves one.
      beforeStop: async () => {
        await onOtherNode(
          node,
          (n) =>
            request(
              n,
              "POST",
              `/_cluster/voting_config_exclusions?node_names=${node.name}&timeout=30s`,
            ),
        );
        await onOtherNode(node, (n) =>
          request(
            n,
            "GET",
            "/_cluster/health?wait_for_status=green&wait_for_no_relocating_shards=true" +
              "&wait_for_no_initializing_shards=true&timeout=30s",
          ));
      },
    }),
  };
}

export default service(NODES[0]);
/** Cluster node 2: joins node 1. */
export const node2: Service = service(NODES[1]);
/** Cluster node 3: joins nodes 1 and 2. */
export const node3: Service = service(NODES[2]);
