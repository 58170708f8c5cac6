/**
 * RabbitMQ for the matrix: Debian's `rabbitmq-server` package (bookworm,
 * 3.10.x, which has stream queues in core), run as the matrix user from its
 * own data directory with its own node name, Erlang cookie, epmd port and
 * distribution port, so it never meets a system RabbitMQ. Node 1
 * (`rabbitmq`) runs alone, or with `rabbitmq-2` and `rabbitmq-3` as a
 * cluster of three ({@linkcode NODES}, own ports on 127.0.0.1, node 1's
 * cookie).
 *
 * The detached process is a small `/bin/sh` wrapper (`run.sh` in the data
 * directory) that runs the broker in the foreground and on SIGTERM stops it
 * gracefully. The nodes share one private epmd, started by whichever node
 * finds none, in a session of its own: a node killed with its whole process
 * tree must not take the others' port mapper along. `down` stops it once no
 * node of the cluster runs.
 *
 * Nodes 2 and 3 join node 1 at their first boot (classic peer discovery,
 * which only a blank node does), are ready once `cluster_status` lists them
 * running with node 1 and they hold a replica of the store's `words` stream
 * (added when it lacks one: a stream declared on node 1 alone has only that
 * member). `down` of node 2 or 3 leaves the cluster cleanly first: its stream
 * replica is deleted and the node reset, so the nodes that stay keep a
 * majority of the stream and node 1 alone serves again; its next `up` joins
 * anew and copies the stream.
 *
 * @module
 */
import amqp from "amqplib";
import { CERT_FILES } from "./certs.ts";
import { run, spawnDetached } from "./proc.ts";
import { cli, clusterStatus, EPMD_PORT, registeredNodes, streamMembers } from "./rabbitmq_cli.ts";
import { MATRIX, type MatrixPaths, type Service } from "./types.ts";
import { aptInstall } from "./apt.ts";

/** The Debian package version installed and run. */
const DEB_VERSION = "3.10.8-1.1+deb12u1";
const SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server";
/** The stream `stores/rabbitmq.ts` keeps its words in. */
const STORE_QUEUE = "words";

/** One node of the matrix's RabbitMQ. */
interface RabbitNode {
  /** The matrix service: "rabbitmq", "rabbitmq-2", … */
  service: string;
  nodename: string;
  amqp: number;
  amqps: number;
  /** Erlang distribution port (system default: 25672). */
  dist: number;
}

/** The three nodes; node 1 is the default topology's single node. */
export const NODES: readonly RabbitNode[] = [
  {
    service: "rabbitmq",
    nodename: "gtmatrix@localhost",
    amqp: MATRIX.ports.rabbitmq,
    amqps: MATRIX.ports.rabbitmqTls,
    dist: 15684,
  },
  {
    service: "rabbitmq-2",
    nodename: "gtmatrix2@localhost",
    amqp: 15686,
    amqps: 15685,
    dist: 15687,
  },
  {
    service: "rabbitmq-3",
    nodename: "gtmatrix3@localhost",
    amqp: 15689,
    amqps: 15688,
    dist: 15690,
  },
];

function url(node: RabbitNode, tls: boolean): string {
  const auth = `${encodeURIComponent(MATRIX.user)}:${encodeURIComponent(MATRIX.password)}`;
  return tls
    ? `amqps://${auth}@${MATRIX.host}:${node.amqps}/%2F`
    : `amqp://${auth}@${MATRIX.host}:${node.amqp}/%2F`;
}

/** Node 1's data directory: its Erlang cookie is the cluster's. */
function firstData(paths: MatrixPaths): string {
  return `${paths.root}/data/${NODES[0].service}`;
}

async function installedVersion(): Promise<string | undefined> {
  try {
    const out = await run("dpkg-query", ["-W", "-f=${Status} ${Version}", "rabbitmq-server"]);
    const m = /install ok installed (\S+)/.exec(out);
    return m?.[1];
  } catch {
    return undefined;
  }
}

/** True for Debian versions of RabbitMQ with stream queues (>= 3.9). */
function hasStreams(debVersion: string): boolean {
  const [major, minor] = debVersion.replace(/^\d+:/, "").split(/[.-]/).map(Number);
  return major > 3 || (major === 3 && minor >= 9);
}

function q(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

function conf(node: RabbitNode, tls: string): string {
  // A blank node 2 or 3 joins node 1 as it boots.
  const join = node === NODES[0] ? [] : [
    "cluster_formation.peer_discovery_backend = classic_config",
    `cluster_formation.classic_config.nodes.1 = ${NODES[0].nodename}`,
  ];
  return [
    "# Written by scripts/matrix/rabbitmq.ts on every start.",
    `listeners.tcp.1 = ${MATRIX.host}:${node.amqp}`,
    `listeners.ssl.1 = ${MATRIX.host}:${node.amqps}`,
    `ssl_options.cacertfile = ${tls}/${CERT_FILES.ca}`,
    `ssl_options.certfile = ${tls}/${CERT_FILES.cert}`,
    `ssl_options.keyfile = ${tls}/${CERT_FILES.key}`,
    "ssl_options.verify = verify_none",
    "ssl_options.fail_if_no_peer_cert = false",
    `default_user = ${MATRIX.user}`,
    `default_pass = ${MATRIX.password}`,
    "default_vhost = /",
    "default_user_tags.administrator = true",
    "default_permissions.configure = .*",
    "default_permissions.read = .*",
    "default_permissions.write = .*",
    "loopback_users = none",
    "disk_free_limit.absolute = 50MB",
    "log.console = true",
    "log.console.level = info",
    "log.file = false",
    ...join,
    "",
  ].join("\n");
}

/** The foreground wrapper: the shared epmd when none runs, the broker, stopped on TERM/INT/HUP. */
function wrapper(node: RabbitNode, data: string): string {
  const env: Record<string, string> = {
    HOME: data,
    PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
    LANG: "C.UTF-8",
    LC_ALL: "C.UTF-8",
    ERL_EPMD_PORT: String(EPMD_PORT),
    ERL_EPMD_ADDRESS: MATRIX.host,
    RABBITMQ_NODENAME: node.nodename,
    RABBITMQ_USE_LONGNAME: "false",
    RABBITMQ_DIST_PORT: String(node.dist),
    RABBITMQ_CONF_ENV_FILE: `${data}/rabbitmq-env.conf`,
    RABBITMQ_CONFIG_FILE: `${data}/rabbitmq.conf`,
    RABBITMQ_ADVANCED_CONFIG_FILE: `${data}/advanced.config`,
    RABBITMQ_ENABLED_PLUGINS_FILE: `${data}/enabled_plugins`,
    RABBITMQ_MNESIA_BASE: `${data}/mnesia`,
    RABBITMQ_LOG_BASE: `${data}/log`,
    RABBITMQ_LOGS: "-",
    RABBITMQ_PID_FILE: `${data}/rabbitmq.pid`,
    // Loopback-only distribution, no busy-waiting schedulers on a shared 2-core machine,
    // and never an epmd -daemon (ours runs in the foreground below).
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS:
      `-kernel inet_dist_use_interface {127,0,0,1} -start_epmd false +sbwt none +sbwtdcpu none +sbwtdio none`,
  };
  const exports = Object.entries(env).map(([k, v]) => `export ${k}=${q(v)}`).join("\n");
  return `#!/bin/sh
# Written by scripts/matrix/rabbitmq.ts on every start: the matrix's epmd (in a
# session of its own, shared by every node) unless one answers, and the RabbitMQ
# node in the foreground; TERM/INT/HUP stop the broker.
${exports}
cd ${q(data)} || exit 1
if ! epmd -names >/dev/null 2>&1; then
  setsid -f epmd -port ${EPMD_PORT} </dev/null
  i=0
  until epmd -names >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -gt 100 ]; then
      echo "rabbitmq wrapper: epmd did not start" >&2
      exit 1
    fi
    sleep 0.1
  done
fi
RUNNING_UNDER_SYSTEMD=true setpriv --pdeathsig TERM ${SERVER} &
rabbit_pid=$!
stop() {
  kill -TERM "$rabbit_pid" 2>/dev/null
  wait "$rabbit_pid"
  exit 0
}
trap stop TERM INT HUP
wait "$rabbit_pid"
exit "$?"
`;
}

async function chown(user: string, ...paths: string[]): Promise<void> {
  if (Deno.uid() === 0) await run("chown", ["-R", `${user}:${user}`, ...paths]);
}

async function connectOnce(node: RabbitNode, tls: boolean, paths: MatrixPaths): Promise<void> {
  const socketOptions: Record<string, unknown> = { timeout: 2000, noDelay: true };
  if (tls) socketOptions.ca = [await Deno.readTextFile(`${paths.certs}/${CERT_FILES.ca}`)];
  const conn = await amqp.connect(url(node, tls) + "?heartbeat=0", socketOptions);
  conn.on("error", () => {});
  try {
    const ch = await conn.createChannel();
    ch.on("error", () => {});
    try {
      // After a restart the broker accepts connections a moment before its durable
      // stream queues are recovered; only then can the store declare `words`.
      await ch.checkQueue(STORE_QUEUE);
      await ch.close();
    } catch (e) {
      if (!/NOT_FOUND - no queue/.test(String((e as Error)?.message))) throw e;
    }
  } finally {
    await conn.close().catch(() => {});
  }
}

async function install(paths: MatrixPaths): Promise<void> {
  const have = await installedVersion();
  if (have && hasStreams(have)) return;
  const apt = (pkg: string) => aptInstall(paths, [pkg]);
  try {
    await apt(`rabbitmq-server=${DEB_VERSION}`);
  } catch {
    // The pinned build was superseded (e.g. by a security update): take the candidate.
    await apt("rabbitmq-server");
  }
  const now = await installedVersion();
  if (!now || !hasStreams(now)) {
    throw new Error(`rabbitmq-server ${now ?? "(none)"} installed; streams need >= 3.9`);
  }
  if (now !== DEB_VERSION) console.warn(`rabbitmq: running ${now}, pinned ${DEB_VERSION}`);
}

/** Node 1 makes the cluster's cookie; the others copy it (they start after node 1). */
async function writeCookie(node: RabbitNode, paths: MatrixPaths): Promise<void> {
  const cookie = `${paths.data}/.erlang.cookie`;
  if (node !== NODES[0]) {
    const text = await Deno.readTextFile(`${firstData(paths)}/.erlang.cookie`);
    await Deno.remove(cookie).catch(() => {});
    await Deno.writeTextFile(cookie, text);
  } else {
    try {
      await Deno.stat(cookie);
    } catch {
      const bytes = crypto.getRandomValues(new Uint8Array(20));
      const text = [...bytes].map((b) => String.fromCharCode(65 + (b % 26))).join("");
      await Deno.writeTextFile(cookie, text);
    }
  }
  await Deno.chmod(cookie, 0o400);
}

async function start(node: RabbitNode, paths: MatrixPaths): Promise<number> {
  const { data } = paths;
  const tls = `${data}/tls`;
  for (const d of [data, tls, `${data}/mnesia`, `${data}/log`]) {
    await Deno.mkdir(d, { recursive: true });
  }
  for (const f of [CERT_FILES.ca, CERT_FILES.cert, CERT_FILES.key]) {
    await Deno.copyFile(`${paths.certs}/${f}`, `${tls}/${f}`);
    await Deno.chmod(`${tls}/${f}`, f === CERT_FILES.key ? 0o600 : 0o644);
  }
  await writeCookie(node, paths);
  await chown(paths.user, data); // the CLI below reads the cookie as the matrix user
  await bootAlone(node, paths);
  await startOverIfForgotten(node, paths);
  await Deno.writeTextFile(`${data}/rabbitmq.conf`, conf(node, tls));
  await Deno.writeTextFile(`${data}/enabled_plugins`, "[].\n");
  await Deno.writeTextFile(`${data}/run.sh`, wrapper(node, data));
  await Deno.chmod(`${data}/run.sh`, 0o755);
  await chown(paths.user, data);
  return await spawnDetached("/bin/sh", [`${data}/run.sh`], {
    user: paths.user,
    log: paths.log,
    cwd: data,
    env: { HOME: data },
  });
}

/**
 * Node 1 started while no other node runs boots without waiting for them
 * (as after `rabbitmqctl force_boot`): a cluster stopped all at once would otherwise keep it
 * waiting minutes for the node that stopped last. Nodes that come back later
 * rejoin it.
 */
async function bootAlone(node: RabbitNode, paths: MatrixPaths): Promise<void> {
  if (node !== NODES[0]) return;
  const others = NODES.slice(1).map((n) => n.nodename.split("@")[0]);
  const running = await registeredNodes();
  if (others.some((n) => running.includes(n))) return;
  // What `rabbitmqctl force_boot` does, without the CLI's need of a running epmd.
  await Deno.writeTextFile(`${paths.data}/mnesia/${node.nodename}/force_load`, "")
    .catch(() => {}); // a new node: no directory, nothing to wait for
}

/**
 * Node 2 or 3 that node 1's cluster no longer lists (forgotten, or reset
 * while node 1 was down) would refuse to boot ("inconsistent cluster"): it
 * starts blank instead and joins anew. It holds nothing node 1 needs.
 */
async function startOverIfForgotten(node: RabbitNode, paths: MatrixPaths): Promise<void> {
  if (node === NODES[0]) return;
  const { members } = await clusterStatus(NODES[0].nodename, paths);
  if (members.includes(node.nodename)) return;
  await Deno.remove(`${paths.data}/mnesia`, { recursive: true }).catch(() => {});
  await Deno.mkdir(`${paths.data}/mnesia`, { recursive: true });
}

/**
 * Node 2 or 3 has joined: `cluster_status` lists it running with node 1, and
 * it holds a replica of the `words` stream when that exists (one is added
 * when missing; a later probe sees it).
 */
async function joined(node: RabbitNode, paths: MatrixPaths): Promise<boolean> {
  const { running } = await clusterStatus(node.nodename, paths);
  if (!running.includes(node.nodename) || !running.includes(NODES[0].nodename)) return false;
  const members = await streamMembers(STORE_QUEUE, node.nodename, paths);
  if (members === undefined || members.includes(node.nodename)) return true;
  await cli("rabbitmq-streams", node.nodename, paths, [
    "add_replica",
    "-p",
    "/",
    STORE_QUEUE,
    node.nodename,
  ]);
  return false;
}

/** Leaves the cluster: drops this node's stream replica, then resets the node (it stays stopped). */
async function leave(node: RabbitNode, paths: MatrixPaths): Promise<void> {
  const members = await streamMembers(STORE_QUEUE, node.nodename, paths).catch(() => undefined);
  if (members?.includes(node.nodename)) {
    await cli("rabbitmq-streams", node.nodename, paths, [
      "delete_replica",
      "-p",
      "/",
      STORE_QUEUE,
      node.nodename,
    ]);
  }
  await cli("rabbitmqctl", node.nodename, paths, ["stop_app"]);
  await cli("rabbitmqctl", node.nodename, paths, ["reset"]);
}

function service(node: RabbitNode): Service {
  const first = node === NODES[0];
  return {
    name: node.service,
    store: "RABBITMQ",
    version: DEB_VERSION,
    install,
    start: (paths) => start(node, paths),
    async ready(paths) {
      try {
        await connectOnce(node, false, paths);
        await connectOnce(node, true, paths);
        return first || await joined(node, paths);
      } catch {
        return false;
      }
    },
    env: () => ({ RABBITMQ_URL: url(node, false), MATRIX_RABBITMQ_TLS_URL: url(node, true) }),
    ...(first ? { joinedEnv: ["RABBITMQ_URL", "MATRIX_RABBITMQ_TLS_URL"] } : {
      after: NODES[NODES.indexOf(node) - 1].service,
      beforeStop: (paths: MatrixPaths) => leave(node, paths),
    }),
  };
}

export default service(NODES[0]);
/** Cluster node 2: joins node 1. */
export const node2: Service = service(NODES[1]);
/** Cluster node 3: joins nodes 1 and 2. */
export const node3: Service = service(NODES[2]);
