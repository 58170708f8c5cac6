/**
 * Plain-text tables for the matrix runner's reports.
 *
 * @module
 */
import { renderColumns } from "../table.ts";

/** One line of the `up`/`status`/`down` report. */
export interface Row {
  service: string;
  store: string;
  version: string;
  /** The store's main URL with the password masked. */
  url: string;
  /** ready, reused, running-not-ready, stopped, FAILED: reason, … */
  state: string;
  /** Seconds from start to ready (or to stopped, for `down`). */
  seconds?: number;
  /** Resident memory of the server's whole process tree, MiB. */
  rssMiB?: number;
}

/** Replaces the password of every `scheme://user:password@` in `url` by `***` and drops the query. */
export function maskUrl(url: string): string {
  return url.replace(/(\/\/[^:/@\s]*:)[^@/\s]*@/g, "$1***@").replace(/\?.*$/, "?…");
}

/** Renders `rows` as an aligned table with a header line. */
export function renderTable(rows: Row[]): string {
  const head = ["SERVICE", "STORE", "VERSION", "URL", "STATE", "SECS", "RSS MiB"];
  const cells = rows.map((r) => [
    r.service,
    r.store,
    r.version,
    r.url,
    r.state,
    r.seconds === undefined ? "-" : r.seconds.toFixed(1),
    r.rssMiB === undefined ? "-" : r.rssMiB.toFixed(0),
  ]);
  return renderColumns([head, ...cells]);
}
