/**
 * RabbitMQ for the matrix: Debian's `rabbitmq-server` package (bookworm,
 * 3.10.x, which has stream queues in core), run as the matrix user from its
 * own data directory with its own node name, Erlang cookie, epmd port and
 * distribution port, so it never meets a system RabbitMQ.
 *
 * The detached process is a small `/bin/sh` wrapper (`run.sh` in the data
 * directory) that starts its own epmd in the foreground, then the broker,
 * and on SIGTERM stops the broker gracefully and then epmd. Nothing
 * daemonizes (`epmd -daemon` would leave the session), so stopping the
 * wrapper's pid, or its session, leaves no epmd, erl or beam behind.
 *
 * @module
 */
import amqp from "amqplib";
import { CERT_FILES } from "./certs.ts";
import { run, spawnDetached } from "./proc.ts";
import { MATRIX, type MatrixPaths, type Service } from "./types.ts";
import { aptInstall } from "./apt.ts";

/** The Debian package version installed and run. */
const DEB_VERSION = "3.10.8-1.1+deb12u1";
/** Erlang port mapper and distribution ports private to the matrix (system defaults: 4369, 25672). */
const EPMD_PORT = 15683;
const DIST_PORT = 15684;
const NODENAME = "gtmatrix@localhost";
const SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server";
/** The stream `stores/rabbitmq.ts` keeps its words in. */
const STORE_QUEUE = "words";

function url(tls: boolean): string {
  const auth = `${encodeURIComponent(MATRIX.user)}:${encodeURIComponent(MATRIX.password)}`;
  return tls
    ? `amqps://${auth}@${MATRIX.host}:${MATRIX.ports.rabbitmqTls}/%2F`
    : `amqp://${auth}@${MATRIX.host}:${MATRIX.ports.rabbitmq}/%2F`;
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

function conf(tls: string): string {
  return [
    "# Written by scripts/matrix/rabbitmq.ts on every start.",
    `listeners.tcp.1 = ${MATRIX.host}:${MATRIX.ports.rabbitmq}`,
    `listeners.ssl.1 = ${MATRIX.host}:${MATRIX.ports.rabbitmqTls}`,
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
    "",
  ].join("\n");
}

/** The foreground wrapper: private epmd + broker, stopped in order on TERM/INT/HUP. */
function wrapper(data: string): string {
  const env: Record<string, string> = {
    HOME: data,
    PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
    LANG: "C.UTF-8",
    LC_ALL: "C.UTF-8",
    ERL_EPMD_PORT: String(EPMD_PORT),
    ERL_EPMD_ADDRESS: MATRIX.host,
    RABBITMQ_NODENAME: NODENAME,
    RABBITMQ_USE_LONGNAME: "false",
    RABBITMQ_DIST_PORT: String(DIST_PORT),
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
# Written by scripts/matrix/rabbitmq.ts on every start: a private epmd and the
# RabbitMQ node in the foreground; TERM/INT/HUP stop the broker, then epmd.
${exports}
cd ${q(data)} || exit 1
if epmd -names >/dev/null 2>&1; then
  echo "rabbitmq wrapper: something already answers as epmd on port ${EPMD_PORT}" >&2
  exit 1
fi
setpriv --pdeathsig TERM epmd -port ${EPMD_PORT} &
epmd_pid=$!
i=0
until epmd -names >/dev/null 2>&1; do
  i=$((i + 1))
  if [ "$i" -gt 100 ] || ! kill -0 "$epmd_pid" 2>/dev/null; then
    echo "rabbitmq wrapper: epmd did not start" >&2
    kill -TERM "$epmd_pid" 2>/dev/null
    exit 1
  fi
  sleep 0.1
done
RUNNING_UNDER_SYSTEMD=true setpriv --pdeathsig TERM ${SERVER} &
rabbit_pid=$!
stop() {
  kill -TERM "$rabbit_pid" 2>/dev/null
  wait "$rabbit_pid"
  kill -TERM "$epmd_pid" 2>/dev/null
  wait "$epmd_pid"
  exit 0
}
trap stop TERM INT HUP
wait "$rabbit_pid"
status=$?
kill -TERM "$epmd_pid" 2>/dev/null
wait "$epmd_pid"
exit "$status"
`;
}

async function chown(user: string, ...paths: string[]): Promise<void> {
  if (Deno.uid() === 0) await run("chown", ["-R", `${user}:${user}`, ...paths]);
}

async function connectOnce(tls: boolean, paths: MatrixPaths): Promise<void> {
  const socketOptions: Record<string, unknown> = { timeout: 2000, noDelay: true };
  if (tls) socketOptions.ca = [await Deno.readTextFile(`${paths.certs}/${CERT_FILES.ca}`)];
  const conn = await amqp.connect(url(tls) + "?heartbeat=0", socketOptions);
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

const rabbitmq: Service = {
  name: "rabbitmq",
  store: "RABBITMQ",
  version: DEB_VERSION,

  async install(paths: MatrixPaths): Promise<void> {
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
  },

  async start(paths: MatrixPaths): Promise<number> {
    const { data } = paths;
    const tls = `${data}/tls`;
    for (const d of [data, tls, `${data}/mnesia`, `${data}/log`]) {
      await Deno.mkdir(d, { recursive: true });
    }
    for (const f of [CERT_FILES.ca, CERT_FILES.cert, CERT_FILES.key]) {
      await Deno.copyFile(`${paths.certs}/${f}`, `${tls}/${f}`);
      await Deno.chmod(`${tls}/${f}`, f === CERT_FILES.key ? 0o600 : 0o644);
    }
    const cookie = `${data}/.erlang.cookie`;
    try {
      await Deno.stat(cookie);
    } catch {
      const bytes = crypto.getRandomValues(new Uint8Array(20));
      const text = [...bytes].map((b) => String.fromCharCode(65 + (b % 26))).join("");
      await Deno.writeTextFile(cookie, text);
    }
    await Deno.chmod(cookie, 0o400);
    await Deno.writeTextFile(`${data}/rabbitmq.conf`, conf(tls));
    await Deno.writeTextFile(`${data}/enabled_plugins`, "[].\n");
    await Deno.writeTextFile(`${data}/run.sh`, wrapper(data));
    await Deno.chmod(`${data}/run.sh`, 0o755);
    await chown(paths.user, data);
    return await spawnDetached("/bin/sh", [`${data}/run.sh`], {
      user: paths.user,
      log: paths.log,
      cwd: data,
      env: { HOME: data },
    });
  },

  async ready(paths: MatrixPaths): Promise<boolean> {
    try {
      await connectOnce(false, paths);
      await connectOnce(true, paths);
      return true;
    } catch {
      return false;
    }
  },

  env(_paths: MatrixPaths): Record<string, string> {
    return { RABBITMQ_URL: url(false), MATRIX_RABBITMQ_TLS_URL: url(true) };
  },
};

export default rabbitmq;
