/**
 * Elasticsearch for the matrix: the integration-test distribution Elastic
 * publishes on Maven Central (`org.elasticsearch.distribution.integ-test-zip`),
 * run on the system Java 17 as a single node on 127.0.0.1, plain HTTP.
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
const ARTIFACT = `org.elasticsearch.distribution.integ-test-zip:elasticsearch:${VERSION}:zip`;
const URL_BASE = `http://${MATRIX.host}:${MATRIX.ports.elasticsearch}`;

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

/** Settings written to the per-data-dir elasticsearch.yml on every start. */
function settings(paths: MatrixPaths): Record<string, string | boolean | number> {
  return {
    "cluster.name": "grand-tour-matrix",
    "node.name": "matrix-elasticsearch",
    "discovery.type": "single-node",
    "network.host": MATRIX.host,
    "http.port": MATRIX.ports.elasticsearch,
    "transport.port": MATRIX.ports.elasticsearchTransport,
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

const service: Service = {
  name: "elasticsearch",
  store: "ELASTICSEARCH",
  version: VERSION,

  async install(paths) {
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
  },

  async start(paths) {
    const java = await javaHome();
    if (!java) throw new Error("no Java 17 found under /usr/lib/jvm; run install first");
    const d = paths.data;
    for (const sub of ["data", "logs", "tmp"]) await Deno.mkdir(`${d}/${sub}`, { recursive: true });
    const conf = `${d}/config`;
    if (!(await exists(`${conf}/elasticsearch.yml`))) {
      await run("cp", ["-R", `${home(paths)}/config`, conf]);
    }
    const yml = Object.entries(settings(paths)).map(([k, v]) => `${k}: ${JSON.stringify(v)}`);
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
        // A fixed 512 MiB heap, touched only as it is used (Elasticsearch pre-touches
        // the whole heap by default, which costs 512 MiB of RSS at once).
        ES_JAVA_OPTS: "-Xms512m -Xmx512m -XX:-AlwaysPreTouch",
      },
    });
  },

  async ready() {
    try {
      const res = await fetch(`${URL_BASE}/_cluster/health?wait_for_status=yellow&timeout=1s`, {
        signal: AbortSignal.timeout(3_000),
      });
      if (!res.ok) {
        await res.body?.cancel();
        return false;
      }
      const health = await res.json() as { status?: string };
      return health.status === "yellow" || health.status === "green";
    } catch {
      return false;
    }
  },

  env() {
    return { ELASTICSEARCH_URL: URL_BASE };
  },
};

export default service;
