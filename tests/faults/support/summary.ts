/**
 * The fault suite's summary: one row per scenario (requests, failures, p99,
 * lost writes, what else was measured, and the verdict), printed as a
 * Markdown table and rewritten to `tests/artifacts/faults.md` after every
 * scenario, so a partial run still leaves its figures behind.
 *
 * @module
 */

/** One scenario's figures. */
export interface SummaryRow {
  scenario: string;
  /** Responses received (all stores). */
  requests: number;
  /** Responses that break the scenario's rules (expected STORE_UNAVAILABLE of the sick store excluded). */
  failures: number;
  /** The p99 the scenario judges, in words (e.g. "REDIS down: MYSQL 6.4 → 9.1 ms (×1.42; …)"). */
  p99: string;
  /** Acknowledged adds missing or duplicated afterwards. */
  lost: number;
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
brackets); for SIGTERM, the requests sent before the signal. lost writes: acknowledged addWord calls
missing or duplicated afterwards.`;

const ARTIFACT = new URL("../../artifacts/faults.md", import.meta.url).pathname;

/** The rows of this run, in the order the scenarios ran. */
export const rows: SummaryRow[] = [];

/** Adds a row, rewrites the artifact and prints the row's line. */
export async function report(row: SummaryRow): Promise<void> {
  rows.push(row);
  console.log(`\n${header()}\n${line(row)}\n`);
  await writeArtifact();
}

/** The whole table as Markdown. */
export function renderTable(all: readonly SummaryRow[] = rows): string {
  return [header(), ...all.map(line)].join("\n");
}

function header(): string {
  return "| scenario | requests | failures | p99 | lost writes | measured | result |\n" +
    "| --- | ---: | ---: | --- | ---: | --- | --- |";
}

function line(r: SummaryRow): string {
  const result = r.breaches.length ? `BREACH: ${r.breaches.join("; ")}` : "pass";
  return `| ${
    [r.scenario, r.requests, r.failures, r.p99, r.lost, r.notes, result].map(cell).join(" | ")
  } |`;
}

function cell(v: string | number): string {
  return String(v).replaceAll("|", "\\|").replaceAll("\n", " ");
}

async function writeArtifact(): Promise<void> {
  const cpus = navigator.hardwareConcurrency;
  const text = `# Fault suite (\`deno task test:faults\`)\n\n` +
    `Run ${new Date().toISOString()} on ${cpus} CPUs, Deno ${Deno.version.deno}.\n\n` +
    `${renderTable()}\n\n${LEGEND}\n`;
  await Deno.mkdir(new URL(".", `file://${ARTIFACT}`).pathname, { recursive: true });
  await Deno.writeTextFile(ARTIFACT, text);
}

/** Formats milliseconds for the table. */
export function ms(n: number): string {
  return Number.isFinite(n) ? `${n < 10 ? n.toFixed(1) : Math.round(n)} ms` : "-";
}
