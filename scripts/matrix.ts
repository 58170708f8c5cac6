/**
 * `deno task matrix up|down|status [--wipe] [service…]`: the local matrix of
 * real database servers (no Docker). Without service names every service is
 * meant. See scripts/matrix/{up,down,state}.ts for what each command does.
 *
 * @module
 */
import { CLUSTER_SERVICE_NAMES, SERVICE_NAMES } from "./matrix/paths.ts";
import { down } from "./matrix/down.ts";
import { status } from "./matrix/state.ts";
import { up } from "./matrix/up.ts";
import { renderTable, type Row } from "./matrix/table.ts";

const USAGE = `usage: deno task matrix up|down|status [--wipe] [service…]
  up      install what is missing, start every (or each named) server, wait until ready,
          write .env.matrix; reuses servers that already run
  down    stop by recorded pid (SIGKILL after 30 s); --wipe also deletes the data (never the cache)
  status  report without starting anything
services: ${SERVICE_NAMES.join(", ")}
cluster nodes (started only when named): ${CLUSTER_SERVICE_NAMES.join(", ")}`;

const KNOWN: readonly string[] = [...SERVICE_NAMES, ...CLUSTER_SERVICE_NAMES];

function fail(msg: string): never {
  console.error(`${msg}\n\n${USAGE}`);
  Deno.exit(2);
}

function totalRss(rows: Row[]): string {
  const mib = rows.reduce((s, r) => s + (r.rssMiB ?? 0), 0);
  return `total RSS ${mib.toFixed(0)} MiB (${(mib / 1024).toFixed(2)} GiB)`;
}

async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  const wipe = rest.includes("--wipe");
  const flags = rest.filter((a) => a.startsWith("-"));
  const unknownFlag = flags.find((f) => f !== "--wipe" || command !== "down");
  if (unknownFlag) fail(`unknown option ${unknownFlag}`);
  const names = rest.filter((a) => !a.startsWith("-"));
  const unknown = names.find((n) => !KNOWN.includes(n));
  if (unknown) fail(`unknown service ${unknown}`);
  const selected = names.length ? [...new Set(names)] : [...SERVICE_NAMES];
  const t0 = Date.now();
  switch (command) {
    case "up": {
      const rows = await up(selected);
      const secs = ((Date.now() - t0) / 1000).toFixed(1);
      console.log(renderTable(rows));
      console.log(`up took ${secs} s; ${totalRss(rows)}`);
      return rows.every((r) => r.state === "ready" || r.state.startsWith("reused")) ? 0 : 1;
    }
    case "status": {
      const rows = await status(selected);
      console.log(renderTable(rows));
      console.log(totalRss(rows));
      return rows.every((r) => r.state === "ready") ? 0 : 3;
    }
    case "down": {
      const rows = await down(selected, wipe, names.length === 0);
      console.log(renderTable(rows));
      return rows.some((r) => r.state.startsWith("FAILED")) ? 1 : 0;
    }
    default:
      fail(command ? `unknown command ${command}` : "no command");
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
