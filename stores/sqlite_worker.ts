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
 * it backwards, so several processes may share one view file (WAL, busy
 * timeout, `INSERT OR IGNORE`). A view is a cache of the stream, so its
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
   * View only, one transaction: adds `records` (each id once, keys computed
   * here) and moves the position forward to `last`. Refused when the view is
   * no longer one of `head`, or no longer holds everything up to `from` (the
   * message before the batch; undefined when the batch starts at `head`).
   */
  | {
    seq: number;
    op: "apply";
    records: WordRecord[];
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
  apply: undefined;
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
    page: db.prepare(
      `SELECT ${COLUMNS} FROM words WHERE id > ? ORDER BY id LIMIT ? OFFSET ?`,
    ),
    search: db.prepare(
      `SELECT ${COLUMNS} FROM words
       WHERE id > ?1 AND instr(search_key, ?2) > 0 ORDER BY id LIMIT ?3 OFFSET ?4`,
    ),
    get: db.prepare(`SELECT ${COLUMNS} FROM words WHERE id = ?`),
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

function prepareView(db: DatabaseSync): View {
  db.exec(`CREATE TABLE IF NOT EXISTS view_position (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    head_offset INTEGER NOT NULL,
    head_id TEXT NOT NULL,
    last_offset INTEGER,
    last_id TEXT
  )`);
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
    db.exec("DELETE FROM words");
    v.reset.run(head.offset, head.id);
    return { head };
  });
}

function apply(db: DatabaseSync, v: View, req: Extract<SqliteRequest, { op: "apply" }>): void {
  transaction(db, () => {
    const stored = readState(v);
    if (!stored || !same(stored.head, req.head)) {
      throw new Error("the view was rebuilt from another stream meanwhile");
    }
    if (req.from && (!stored.last || stored.last.offset < req.from.offset)) {
      throw new Error("the view was emptied meanwhile");
    }
    for (const r of req.records) {
      v.insert.run(r.id, r.word, r.definition, r.createdAt, searchKey(r.word, r.definition));
    }
    v.advance.run(req.last.offset, req.last.id);
  });
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

/** Adds a nullable text column to a `words` table from an earlier version. */
function addColumn(db: DatabaseSync, name: "search_key" | "updated_at"): void {
  const columns = db.prepare("SELECT name FROM pragma_table_info('words')").all();
  if (!columns.some((c) => c.name === name)) db.exec(`ALTER TABLE words ADD COLUMN ${name} TEXT`);
}

const COLUMNS = "id, word, definition, created_at, updated_at";

function toRecord(row: Record<string, unknown>): WordRecord {
  const record: WordRecord = {
    id: String(row.id),
    word: String(row.word),
    definition: String(row.definition),
    createdAt: String(row.created_at),
  };
  if (row.updated_at !== null && row.updated_at !== undefined) {
    record.updatedAt = String(row.updated_at);
  }
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
    case "replace": {
      const r = req.record;
      const { changes } = opened().replace.run(
        r.word,
        r.definition,
        r.searchKey,
        r.updatedAt ?? null,
        r.id,
        req.revision,
      );
      return changes === 1;
    }
    case "remove":
      return opened().remove.run(req.id, req.revision).changes === 1;
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
    case "apply": {
      const s = openedView();
      apply(s.db, s.view, req);
      return;
    }
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
