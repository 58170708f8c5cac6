/**
 * The SQLite database itself, on a worker thread. `node:sqlite` is
 * synchronous: on the gateway's event loop every commit's fsync would stall
 * every other store's requests for as long as the disk takes. Here it
 * blocks only this thread; `stores/sqlite.ts` talks to it by messages.
 *
 * Protocol: the parent posts {@linkcode SqliteRequest}s and gets one
 * {@linkcode SqliteReply} per request, with the same `seq`.
 *
 * A database opened as a view (`open` with `view: true`) holds the words of
 * a stream that stays the source of truth (RabbitMQ's, `rabbitmq_view.ts`):
 * besides `words`, one `view_position` row names the stream's first message
 * it was built from and the last message it applied. `resume` and `apply`
 * read and move that row in the same transaction as the words and never move
 * it backwards. `apply` applies each {@linkcode ViewEvent} (an added word, an
 * edit, a deletion) with the same statements as `add`, `replace` and
 * `remove`, exactly once per file: several processes may share one view file
 * (WAL, busy timeout), and whatever another one already applied is skipped,
 * its edits' outcomes read from `view_outcomes`, where each edit's is kept
 * for {@linkcode OUTCOMES_KEPT_MS}. A view is a cache of the stream, so its
 * commits skip the fsync (`synchronous=NORMAL`): a crash loses at most the
 * last batches, and their position with them, which are read again.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { searchKey } from "./records.ts";
import type { ListQuery, NewWord, WordRecord } from "./types.ts";

/** A message's place in a stream: its offset and its message id ("" when it has none). */
export interface StreamPosition {
  offset: number;
  id: string;
}

/** Where a view stands: the stream's first message it was built from, and the last one applied. */
export interface ViewState {
  head: StreamPosition;
  /** Undefined until the first batch is applied. */
  last?: StreamPosition;
}

/**
 * One message of a stream as a view applies it, at its offset: a word added
 * (kept unless its id is taken), or an edit or deletion that applies only if
 * the word exists at `revision` (`updated_at`, else `created_at`).
 */
export type ViewEvent =
  | { type: "add"; offset: number; record: WordRecord }
  | { type: "update"; offset: number; record: NewWord; revision: string }
  | { type: "delete"; offset: number; id: string; revision: string };

/**
 * How long a view keeps whether each edit applied, for another process
 * sharing the file whose own edit this one applied first: far longer than
 * any caller waits for its edit (10 s in `rabbitmq.ts`).
 */
export const OUTCOMES_KEPT_MS = 300_000;

/** A call from `stores/sqlite.ts`. */
export type SqliteRequest =
  | { seq: number; op: "open"; path: string; view?: boolean }
  | { seq: number; op: "add"; record: NewWord }
  /** Many records in one transaction (the bulk path). */
  | { seq: number; op: "addMany"; records: NewWord[] }
  | { seq: number; op: "list"; query: ListQuery }
  | { seq: number; op: "get"; id: string }
  /** Compare-and-set on the revision (`updated_at`, else `created_at`). */
  | { seq: number; op: "replace"; record: NewWord; revision: string }
  /** Compare-and-delete on the revision. */
  | { seq: number; op: "remove"; id: string; revision: string }
  | { seq: number; op: "ping" }
  | { seq: number; op: "close" }
  /**
   * View only: makes it a view of the stream whose first message is `head`
   * and answers its {@linkcode ViewState}. Empties it first when it is new,
   * was built from another stream, or still stands at `discard` (a position
   * the stream turned out not to have).
   */
  | { seq: number; op: "resume"; head: StreamPosition; discard?: StreamPosition }
  /**
   * View only, one transaction: applies `events` in order (an added word's
   * key computed here; those at or before the stored position skipped, as
   * another process sharing the file applied them) and moves the position
   * forward to `last`. Answers, by offset, whether each edit and deletion
   * applied (as recorded when it was, if skipped; absent if no longer
   * known). Refused when the view is no longer one of `head`, or no longer
   * holds everything up to `from` (the message before the batch; undefined
   * when the batch starts at `head`).
   */
  | {
    seq: number;
    op: "apply";
    events: ViewEvent[];
    head: StreamPosition;
    from?: StreamPosition;
    last: StreamPosition;
  };

/** What each request's reply carries. */
export interface SqliteValues {
  open: undefined;
  add: undefined;
  addMany: undefined;
  list: WordRecord[];
  get: WordRecord | undefined;
  replace: boolean;
  remove: boolean;
  ping: undefined;
  close: undefined;
  resume: ViewState;
  apply: Map<number, boolean>;
}

/** The answer to one {@linkcode SqliteRequest}: a value, or an error's name and message only. */
export type SqliteReply =
  | { seq: number; ok: true; value?: SqliteValues[keyof SqliteValues] }
  | { seq: number; ok: false; name: string; message: string };

interface Open {
  db: DatabaseSync;
  insert: StatementSync;
  page: StatementSync;
  search: StatementSync;
  get: StatementSync;
  replace: StatementSync;
  remove: StatementSync;
  ping: StatementSync;
  view?: View;
}

interface View {
  read: StatementSync;
  insert: StatementSync;
  reset: StatementSync;
  advance: StatementSync;
  outcome: StatementSync;
  record: StatementSync;
  prune: StatementSync;
}

let state: Open | undefined;

function openDatabase(path: string, view: boolean): Open {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  const db = new DatabaseSync(path);
  // The busy timeout first: switching a new file to WAL waits for another process opening it too.
  db.exec(
    view
      ? "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
      : "PRAGMA busy_timeout = 1000; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;",
  );
  if (view) refuseForeign(db);
  db.exec(`CREATE TABLE IF NOT EXISTS words (
    id TEXT PRIMARY KEY,
    word TEXT NOT NULL,
    definition TEXT NOT NULL,
    created_at TEXT NOT NULL,
    search_key TEXT,
    updated_at TEXT
  ) WITHOUT ROWID`);
  addColumn(db, "updated_at");
  if (!view) backfill(db); // a view's words always have their keys
  return {
    db,
    insert: db.prepare(
      "INSERT INTO words (id, word, definition, created_at, search_key) VALUES (?, ?, ?, ?, ?)",
    ),
    page: returningArrays(db.prepare(
      `SELECT ${COLUMNS} FROM words WHERE id > ? ORDER BY id LIMIT ? OFFSET ?`,
    )),
    search: returningArrays(db.prepare(
      `SELECT ${COLUMNS} FROM words
       WHERE id > ?1 AND instr(search_key, ?2) > 0 ORDER BY id LIMIT ?3 OFFSET ?4`,
    )),
    get: returningArrays(db.prepare(`SELECT ${COLUMNS} FROM words WHERE id = ?`)),
    replace: db.prepare(
      `UPDATE words SET word = ?, definition = ?, search_key = ?, updated_at = ?
       WHERE id = ? AND coalesce(updated_at, created_at) = ?`,
    ),
    remove: db.prepare("DELETE FROM words WHERE id = ? AND coalesce(updated_at, created_at) = ?"),
    ping: db.prepare("SELECT 1"),
    view: view ? prepareView(db) : undefined,
  };
}

/** A file with words but no position is no view (say, the embedded store's): never emptied. */
function refuseForeign(db: DatabaseSync): void {
  const table = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?");
  if (table.get("view_position") || !table.get("words")) return;
  if (db.prepare("SELECT 1 FROM words LIMIT 1").get()) {
    throw new Error("the file holds words but no stream position: not a view, left untouched");
  }
}

/**
 * Creates the view's tables. A view file from before edits (no
 * `view_outcomes`) has its position dropped, so `resume` rebuilds it from
 * the stream: its gateway took no notice of edit and deletion events, which
 * a newer one sharing the stream may have published meanwhile.
 */
function prepareView(db: DatabaseSync): View {
  transaction(db, () => {
    const beforeEdits = !db.prepare(
      "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'view_outcomes'",
    ).get();
    db.exec(`CREATE TABLE IF NOT EXISTS view_position (
      one INTEGER PRIMARY KEY CHECK (one = 1),
      head_offset INTEGER NOT NULL,
      head_id TEXT NOT NULL,
      last_offset INTEGER,
      last_id TEXT
    );
    CREATE TABLE IF NOT EXISTS view_outcomes (
      stream_offset INTEGER PRIMARY KEY,
      applied INTEGER NOT NULL,
      at INTEGER NOT NULL
    )`);
    if (beforeEdits) db.exec("DELETE FROM view_position");
  });
  return {
    read: db.prepare("SELECT head_offset, head_id, last_offset, last_id FROM view_position"),
    insert: db.prepare(
      `INSERT OR IGNORE INTO words (id, word, definition, created_at, search_key)
       VALUES (?, ?, ?, ?, ?)`,
    ),
    reset: db.prepare(
      "INSERT OR REPLACE INTO view_position (one, head_offset, head_id) VALUES (1, ?, ?)",
    ),
    advance: db.prepare(
      `UPDATE view_position SET last_offset = ?1, last_id = ?2
       WHERE last_offset IS NULL OR last_offset < ?1`,
    ),
    outcome: db.prepare("SELECT applied FROM view_outcomes WHERE stream_offset = ?"),
    record: db.prepare(
      "INSERT INTO view_outcomes (stream_offset, applied, at) VALUES (?, ?, ?)",
    ),
    // Rows come in offset order, so the old ones are a prefix: the scan stops at the first kept.
    prune: db.prepare(
      `DELETE FROM view_outcomes WHERE stream_offset <
       (SELECT stream_offset FROM view_outcomes WHERE at >= ? ORDER BY stream_offset LIMIT 1)`,
    ),
  };
}

/** Runs `fn` in one write transaction, taken at once (so a reader never has to upgrade). */
function transaction<T>(db: DatabaseSync, fn: () => T): T {
  db.exec("BEGIN IMMEDIATE");
  try {
    const value = fn();
    db.exec("COMMIT");
    return value;
  } catch (e) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw e;
  }
}

function same(a: StreamPosition, b: StreamPosition): boolean {
  return a.offset === b.offset && a.id === b.id;
}

function readState(v: View): ViewState | undefined {
  const row = v.read.get();
  if (!row) return undefined;
  const head = { offset: Number(row.head_offset), id: String(row.head_id) };
  if (row.last_offset === null) return { head };
  return { head, last: { offset: Number(row.last_offset), id: String(row.last_id) } };
}

function resume(
  db: DatabaseSync,
  v: View,
  head: StreamPosition,
  discard: StreamPosition | undefined,
): ViewState {
  return transaction(db, () => {
    const stored = readState(v);
    const stale = !stored || !same(stored.head, head) ||
      (discard !== undefined && stored.last !== undefined && same(stored.last, discard));
    if (!stale) return stored;
    db.exec("DELETE FROM words; DELETE FROM view_outcomes");
    v.reset.run(head.offset, head.id);
    return { head };
  });
}

function apply(
  s: Open & { view: View },
  req: Extract<SqliteRequest, { op: "apply" }>,
): Map<number, boolean> {
  const { db, view: v } = s;
  return transaction(db, () => {
    const stored = readState(v);
    if (!stored || !same(stored.head, req.head)) {
      throw new Error("the view was rebuilt from another stream meanwhile");
    }
    if (req.from && (!stored.last || stored.last.offset < req.from.offset)) {
      throw new Error("the view was emptied meanwhile");
    }
    const done = stored.last?.offset ?? -1;
    const outcomes = new Map<number, boolean>();
    const now = Date.now();
    for (const e of req.events) {
      if (e.type === "add") {
        if (e.offset <= done) continue;
        const r = e.record;
        v.insert.run(r.id, r.word, r.definition, r.createdAt, searchKey(r.word, r.definition));
        continue;
      }
      if (e.offset <= done) {
        const row = v.outcome.get(e.offset);
        if (row) outcomes.set(e.offset, row.applied === 1);
        continue;
      }
      const applied = e.type === "update"
        ? compareAndSet(s, e.record, e.revision)
        : compareAndDelete(s, e.id, e.revision);
      v.record.run(e.offset, applied ? 1 : 0, now);
      outcomes.set(e.offset, applied);
    }
    if (outcomes.size > 0) v.prune.run(now - OUTCOMES_KEPT_MS);
    v.advance.run(req.last.offset, req.last.id);
    return outcomes;
  });
}

/** `replace`: sets `r` only where the word is still at `revision`; true if it was. */
function compareAndSet(s: Open, r: NewWord, revision: string): boolean {
  const { changes } = s.replace.run(
    r.word,
    r.definition,
    r.searchKey,
    r.updatedAt ?? null,
    r.id,
    revision,
  );
  return changes === 1;
}

/** `remove`: deletes word `id` only while it is at `revision`; true if it was. */
function compareAndDelete(s: Open, id: string, revision: string): boolean {
  return s.remove.run(id, revision).changes === 1;
}

/**
 * A file written before search keys existed gets the column, and every word
 * without a key gets one (the gateway's own `searchKey`, called from SQL),
 * in one transaction; a no-op when every word has its key.
 */
function backfill(db: DatabaseSync): void {
  addColumn(db, "search_key");
  db.function("gt_search_key", { deterministic: true }, (w, d) => searchKey(String(w), String(d)));
  db.exec("UPDATE words SET search_key = gt_search_key(word, definition) WHERE search_key IS NULL");
}

/**
 * Adds a nullable text column to a `words` table from an earlier version (a
 * view's too), checked and added in one transaction: processes sharing a
 * view file may open it at the same time.
 */
function addColumn(db: DatabaseSync, name: "search_key" | "updated_at"): void {
  transaction(db, () => {
    const columns = db.prepare("SELECT name FROM pragma_table_info('words')").all();
    if (!columns.some((c) => c.name === name)) db.exec(`ALTER TABLE words ADD COLUMN ${name} TEXT`);
  });
}

/** The columns of a word, in the order {@linkcode toRecord} reads them. */
const COLUMNS = "id, word, definition, created_at, updated_at";

/**
 * A word's statement answers rows as arrays, in {@linkcode COLUMNS} order:
 * node:sqlite builds no object per row, keyed by column name, only for
 * {@linkcode toRecord} to copy it. Measured on a page of 100 words
 * (2026-11-30): 74 µs to read and convert them, against 188 µs with objects,
 * on the database thread of every listing.
 */
function returningArrays(statement: StatementSync): StatementSync {
  // Node 24's API, in Deno 2.9's node:sqlite, not yet in its type declarations.
  (statement as StatementSync & { setReturnArrays(on: boolean): void }).setReturnArrays(true);
  return statement;
}

/** A row of {@linkcode COLUMNS} as a word. */
function toRecord(row: unknown): WordRecord {
  const [id, word, definition, createdAt, updatedAt] = row as unknown[];
  const record: WordRecord = {
    id: String(id),
    word: String(word),
    definition: String(definition),
    createdAt: String(createdAt),
  };
  if (updatedAt !== null && updatedAt !== undefined) record.updatedAt = String(updatedAt);
  return record;
}

function opened(): Open {
  if (!state) throw new Error("sqlite: the database is not open");
  return state;
}

function openedView(): Open & { view: View } {
  const s = opened();
  if (!s.view) throw new Error("sqlite: the database is not a view");
  return s as Open & { view: View };
}

function handle(req: SqliteRequest): SqliteValues[keyof SqliteValues] {
  switch (req.op) {
    case "open":
      state ??= openDatabase(req.path, req.view ?? false);
      return;
    case "add": {
      const r = req.record;
      opened().insert.run(r.id, r.word, r.definition, r.createdAt, r.searchKey);
      return;
    }
    case "addMany": {
      const s = opened();
      transaction(s.db, () => {
        for (const r of req.records) {
          s.insert.run(r.id, r.word, r.definition, r.createdAt, r.searchKey);
        }
      });
      return;
    }
    case "list": {
      const { search: needle, limit, offset, after = "" } = req.query;
      const s = opened();
      const rows = needle
        ? s.search.all(after, needle, limit, offset)
        : s.page.all(after, limit, offset);
      return rows.map(toRecord);
    }
    case "get": {
      const row = opened().get.get(req.id);
      return row ? toRecord(row) : undefined;
    }
    case "replace":
      return compareAndSet(opened(), req.record, req.revision);
    case "remove":
      return compareAndDelete(opened(), req.id, req.revision);
    case "ping":
      opened().ping.get();
      return;
    case "close":
      if (state?.db.isOpen) state.db.close();
      state = undefined;
      return;
    case "resume": {
      const s = openedView();
      return resume(s.db, s.view, req.head, req.discard);
    }
    case "apply":
      return apply(openedView(), req);
  }
}

self.onmessage = (e: MessageEvent<SqliteRequest>) => {
  const req = e.data;
  let reply: SqliteReply;
  try {
    reply = { seq: req.seq, ok: true, value: handle(req) };
  } catch (err) {
    const { name, message } = err instanceof Error ? err : new Error(String(err));
    reply = { seq: req.seq, ok: false, name, message };
  }
  self.postMessage(reply);
};
