/**
 * Plain-text tables for the matrix runner's reports.
 *
 * @module
 */

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
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) =>
    c.map((v, i) => (i >= 5 ? v.padStart(widths[i]) : v.padEnd(widths[i]))).join("  ").trimEnd();
  return [line(head), ...cells.map(line)].join("\n");
}
