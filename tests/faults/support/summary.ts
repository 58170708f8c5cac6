/**
 * The fault suite's summary: one row per scenario (requests, failures, p99,
 * lost adds, edits and deletions, what else was measured, and the verdict),
 * printed as a Markdown table and rewritten to `tests/artifacts/faults.md`
 * after every scenario, so a partial run still leaves its figures behind;
 * below it, the edits and deletions of each scenario per store.
 *
 * @module
 */
import { STORE_NAMES, type StoreName } from "../../../stores/types.ts";
import type { ChangeFigures } from "./verify.ts";

/** One scenario's figures. */
export interface SummaryRow {
  scenario: string;
  /** Responses received (all stores). */
  requests: number;
  /** Responses that break the scenario's rules (expected STORE_UNAVAILABLE of the sick store excluded). */
  failures: number;
  /** The p99 the scenario judges, in words (e.g. "REDIS down: MYSQL 6.4 → 9.1 ms (×1.42; …)"). */
  p99: string;
  /** Acknowledged adds missing (not deleted), duplicated or altered afterwards. */
  lost: number;
  /** What became of the load's edits and deletions, all stores. */
  changes: ChangeFigures;
  /** The same per store. */
  changesByStore: [StoreName, ChangeFigures][];
  /**
   * Stores with read replicas: reads served by the replicas and by the
   * primary, from the databases' own counters (support/replication.ts).
   */
  reads?: string;
  /** Stores with read replicas: read-your-writes waits p50/p99, from the gateway's node lines. */
  waits?: string;
  /** Other figures: the sick store's answers, recovery time, memory, sockets. */
  notes: string;
  /** Empty when the scenario passed. */
  breaches: string[];
}

const LEGEND = `requests: responses received, all stores. failures: responses that break the
scenario's rules (the sick store's STORE_UNAVAILABLE answers are expected, not failures). p99: for a
kill or stall, per phase, the healthy store whose p99 grew most from before the fault, with its
database call (Server-Timing) and the rest (the gateway's own) beside it; judged while the sick
database is down or stalled, only reported while it restarts or resumes; for the control, the
second 10 s window against the first; for the soak, all requests after the warm-up (per store in
brackets); for SIGTERM, the requests sent before the signal. lost adds: acknowledged addWord calls
missing afterwards (without a deletion), listed twice, or listed with a definition no request sent.
edits: acknowledged updateWord calls / verified (the word lists its value, or a later edit or its
deletion legitimately superseded it) / lost (neither). deletions: acknowledged deleteWord calls /
verified (not listed) / resurrected (listed). After them, changes of unknown outcome
(STORE_UNAVAILABLE, a timeout, a broken connection: may or may not have applied) and refused ones
(NOT_FOUND, CONFLICT, BAD_USER_INPUT: did not apply). reads replica/primary (stores with read
replicas, warm-up included): words reads the replicas served, counted by the replicas themselves
(PostgreSQL's scans of words, MariaDB's Com_stmt_execute, Redis's EVALSHA/EVAL), and the rest of the
reads the load got answered, which the primary served; beside them the growth of the primary's own
counter, which also counts the read before each edit and deletion. read-your-writes waits: the
gateway's node lines (stores query): reads that came before the replica had applied the gateway's
latest write waited for it; p50/p99 of those waits, how many gave up (served by the primary).`;

const STORE_LEGEND = `Per store, each cell: edits acknowledged/verified/lost; deletions
acknowledged/verified/resurrected; then changes of unknown outcome and refused ones, if any.`;

const ARTIFACT = new URL("../../artifacts/faults.md", import.meta.url).pathname;

/** The rows of this run, in the order the scenarios ran. */
export const rows: SummaryRow[] = [];

/** Adds a row, rewrites the artifact and prints the row's lines. */
export async function report(row: SummaryRow): Promise<void> {
  rows.push(row);
  console.log(`\n${header()}\n${line(row)}\n\n${renderStoreTable([row])}\n`);
  await writeArtifact();
}

/** The whole table as Markdown. */
export function renderTable(all: readonly SummaryRow[] = rows): string {
  return [header(), ...all.map(line)].join("\n");
}

/** Edits and deletions per scenario (rows) and store (columns), as Markdown. */
export function renderStoreTable(all: readonly SummaryRow[] = rows): string {
  const present = new Set(all.flatMap((r) => r.changesByStore.map(([s]) => s)));
  const stores = STORE_NAMES.filter((s) => present.has(s));
  const head = `| scenario | ${stores.join(" | ")} |\n| --- |${" ---: |".repeat(stores.length)}`;
  return [
    head,
    ...all.map((r) => {
      const of = new Map(r.changesByStore);
      return `| ${
        [r.scenario, ...stores.map((s) => of.has(s) ? storeCell(of.get(s)!) : "-")].map(cell)
          .join(" | ")
      } |`;
    }),
  ].join("\n");
}

function header(): string {
  return "| scenario | requests | failures | p99 | lost adds | edits (acked/verified/lost) " +
    "| deletions (acked/verified/resurrected) | reads replica/primary | read-your-writes waits " +
    "| measured | result |\n" +
    "| --- | ---: | ---: | --- | ---: | ---: | ---: | --- | --- | --- | --- |";
}

function line(r: SummaryRow): string {
  const result = r.breaches.length ? `BREACH: ${r.breaches.join("; ")}` : "pass";
  const { edits: e, deletions: d } = r.changes;
  return `| ${
    [
      r.scenario,
      r.requests,
      r.failures,
      r.p99,
      r.lost,
      `${e.acked}/${e.verified}/${e.lost}${uncertain(e)}`,
      `${d.acked}/${d.verified}/${d.resurrected}${uncertain(d)}`,
      r.reads || "-",
      r.waits || "-",
      r.notes,
      result,
    ].map(cell).join(" | ")
  } |`;
}

/** ", 3 unknown, 1 refused", leaving out zeros. */
function uncertain(f: { unknown: number; refused: number }): string {
  return (f.unknown ? `, ${f.unknown} unknown` : "") + (f.refused ? `, ${f.refused} refused` : "");
}

/** "112/112/0; 37/37/0; 2 unknown": one store's edits and deletions. */
function storeCell(f: ChangeFigures): string {
  const { edits: e, deletions: d } = f;
  const rest = { unknown: e.unknown + d.unknown, refused: e.refused + d.refused };
  return `${e.acked}/${e.verified}/${e.lost}; ${d.acked}/${d.verified}/${d.resurrected}${
    uncertain(rest).replace(",", ";")
  }`;
}

function cell(v: string | number): string {
  return String(v).replaceAll("|", "\\|").replaceAll("\n", " ");
}

async function writeArtifact(): Promise<void> {
  const cpus = navigator.hardwareConcurrency;
  const text = `# Fault suite (\`deno task test:faults\`)\n\n` +
    `Run ${new Date().toISOString()} on ${cpus} CPUs, Deno ${Deno.version.deno}.\n\n` +
    `${renderTable()}\n\n${LEGEND}\n\n## Edits and deletions per store\n\n${renderStoreTable()}\n\n` +
    `${STORE_LEGEND}\n`;
  await Deno.mkdir(new URL(".", `file://${ARTIFACT}`).pathname, { recursive: true });
  await Deno.writeTextFile(ARTIFACT, text);
}

/** Formats milliseconds for the table. */
export function ms(n: number): string {
  return Number.isFinite(n) ? `${n < 10 ? n.toFixed(1) : Math.round(n)} ms` : "-";
}
