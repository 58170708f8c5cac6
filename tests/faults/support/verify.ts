/**
 * Whether every acknowledged write holds after a scenario: for each tag the
 * load used, the words that carry it are listed by search through the
 * gateway, page by page, and {@linkcode judgeWrites} compares them with what
 * the gateway acknowledged. Per store, for every acknowledged `addWord`:
 *
 * - Deletion: with an acknowledged deletion, the word must not be listed (a
 *   listed one is *resurrected*). With a deletion of unknown outcome, it may
 *   be listed or not.
 * - Add: otherwise it must be listed (else the add is *lost*), and never
 *   more than once (each extra copy is *duplicated*).
 * - Edits: a listed word's definition must be the value of its last
 *   acknowledged edit, or of an edit of unknown outcome sent after that one
 *   (with no acknowledged edit: the definition it was added with, or any of
 *   its unknown edits). Else its last acknowledged edit is *lost* (with no
 *   acknowledged edit, the add counts as lost: the word holds a definition
 *   no request sent). A refused edit did not apply, so its value is never
 *   allowed. An acknowledged edit is *verified* when it is not lost: its
 *   value is there, or it was legitimately superseded (by a later
 *   acknowledged edit, an edit of unknown outcome sent after it, or the
 *   word's deletion). A word missing without a deletion loses its last
 *   acknowledged edit along with its add.
 *
 * The load's connections edit and delete only their own words, one request
 * at a time, so the changes of a word are recorded in the order they were
 * sent. Every edit is a compare-and-set on the word's revision (stores/
 * edits.ts), so an edit of unknown outcome sent before an acknowledged one
 * cannot land after it: if it applied first, the acknowledged one was
 * retried on top of it.
 *
 * @module
 */
import type { StoreName } from "../../../stores/types.ts";
import type { Ack, Change, GraphQLResponse } from "./samples.ts";

const SEARCH = `query($store: Store!, $search: String!, $offset: Int!) {
  words(store: $store, search: $search, limit: 1000, offset: $offset) {
    id word definition updatedAt
  }
}`;
const PAGE = 1000;
/** Attempts per page while a store is still waking up. */
const ATTEMPTS = 40;

/** A word of one of the load's tags, as the check listed it. */
export interface ListedWord {
  store: StoreName;
  id: string;
  word: string;
  definition: string;
  updatedAt: string | null;
}

/** What happened to the edits and deletions of one store (or all). */
export interface ChangeFigures {
  edits: {
    acked: number;
    /** Acknowledged edits that held or were legitimately superseded. */
    verified: number;
    /** Acknowledged edits whose value is not there and was not legitimately superseded. */
    lost: number;
    unknown: number;
    refused: number;
  };
  deletions: {
    acked: number;
    /** Acknowledged deletions whose word is not listed. */
    verified: number;
    /** Acknowledged deletions whose word is listed. */
    resurrected: number;
    unknown: number;
    refused: number;
  };
}

/** The result of checking a load's acknowledgements. */
export interface Durability {
  /** Acknowledged adds checked. */
  acked: number;
  /**
   * Acknowledged adds not listed although not deleted, or listed with a
   * definition no request sent.
   */
  lost: number;
  /** Acknowledged ids found more than once (each extra copy counts). */
  duplicated: number;
  /** Words of the run's tags that were stored although their add was not acknowledged. */
  unacknowledged: number;
  /** Words found with the run's tags, acknowledged or not. */
  listed: number;
  /** Acknowledged adds whose word was deleted (an acknowledged deletion). */
  deleted: number;
  /** Per store: what is wrong, when anything is. */
  problems: string[];
  /** Per store with any: "MONGODB 43" words stored whose add was not acknowledged. */
  unacknowledgedByStore: string[];
  /** Edits and deletions of every store. */
  changes: ChangeFigures;
  /** Edits and deletions per store, in the order of `acks`. */
  changesByStore: [StoreName, ChangeFigures][];
}

/** What a load acknowledged and sent. */
export interface LoadRecord {
  readonly acks: readonly Ack[];
  readonly changes: readonly Change[];
}

/** Checks `load`'s adds, edits and deletions against what the gateway at `url` lists now. */
export async function checkDurability(url: string, load: LoadRecord): Promise<Durability> {
  const listed: ListedWord[] = [];
  const tags = new Map<StoreName, Set<string>>();
  for (const a of load.acks) tags.set(a.store, (tags.get(a.store) ?? new Set()).add(a.tag));
  for (const [store, set] of tags) {
    for (const tag of set) listed.push(...await listTag(url, store, tag));
  }
  return judgeWrites(load, listed);
}

/** No edit or deletion yet. */
function noChanges(): ChangeFigures {
  return {
    edits: { acked: 0, verified: 0, lost: 0, unknown: 0, refused: 0 },
    deletions: { acked: 0, verified: 0, resurrected: 0, unknown: 0, refused: 0 },
  };
}

/** Adds `more` to `into`, field by field. */
function addFigures(into: ChangeFigures, more: ChangeFigures): void {
  for (const k of Object.keys(more.edits) as (keyof ChangeFigures["edits"])[]) {
    into.edits[k] += more.edits[k];
  }
  for (const k of Object.keys(more.deletions) as (keyof ChangeFigures["deletions"])[]) {
    into.deletions[k] += more.deletions[k];
  }
}

/** `items` grouped by `keyOf`, each group in the order of `items`. */
function groupBy<T, K>(items: readonly T[], keyOf: (item: T) => K): Map<K, T[]> {
  const groups = new Map<K, T[]>();
  for (const item of items) {
    const k = keyOf(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

/** Judges `load` against `listed`, every word of its tags (see the module's rules). */
export function judgeWrites(load: LoadRecord, listed: readonly ListedWord[]): Durability {
  const result: Durability = {
    acked: load.acks.length,
    lost: 0,
    duplicated: 0,
    unacknowledged: 0,
    listed: listed.length,
    deleted: 0,
    problems: [],
    unacknowledgedByStore: [],
    changes: noChanges(),
    changesByStore: [],
  };
  const key = (w: { store: StoreName; id: string }) => `${w.store} ${w.id}`;
  const copies = groupBy(listed, key);
  const changesOf = groupBy(load.changes, key);
  for (const [store, acks] of groupBy(load.acks, (a) => a.store)) {
    const figures = noChanges();
    let lost = 0, duplicated = 0;
    const altered: string[] = [], lostEdits: string[] = [], resurrected: string[] = [];
    for (const ack of acks) {
      const found = copies.get(key(ack)) ?? [];
      const verdict = judgeWord(ack, changesOf.get(key(ack)) ?? [], found);
      addFigures(figures, verdict.figures);
      if (verdict.deleted) result.deleted++;
      if (found.length === 0 && !verdict.mayBeGone) lost++;
      if (found.length > 1) duplicated += found.length - 1;
      if (verdict.altered) altered.push(verdict.altered);
      if (verdict.lostEdit) lostEdits.push(verdict.lostEdit);
      if (verdict.resurrected) resurrected.push(ack.id);
    }
    const ids = new Set(acks.map((a) => a.id));
    const extra = listed.filter((w) => w.store === store && !ids.has(w.id)).length;
    result.lost += lost + altered.length;
    result.duplicated += duplicated;
    result.unacknowledged += extra;
    addFigures(result.changes, figures);
    result.changesByStore.push([store, figures]);
    if (extra) result.unacknowledgedByStore.push(`${store} ${extra}`);
    if (lost || duplicated) {
      result.problems.push(`${store}: ${lost} acknowledged adds lost, ${duplicated} duplicated`);
    }
    if (altered.length) {
      result.problems.push(
        `${store}: ${altered.length} words listed with a definition no request sent (${
          altered[0]
        })`,
      );
    }
    if (lostEdits.length) {
      result.problems.push(
        `${store}: ${lostEdits.length} acknowledged edits lost (${lostEdits[0]})`,
      );
    }
    if (resurrected.length) {
      result.problems.push(
        `${store}: ${resurrected.length} acknowledged deletions resurrected (${
          resurrected.slice(0, 3).join(", ")
        })`,
      );
    }
  }
  return result;
}

/** The verdict on one acknowledged word. */
interface WordVerdict {
  figures: ChangeFigures;
  /** An acknowledged deletion. */
  deleted: boolean;
  /** A deletion acknowledged or of unknown outcome: not being listed is fine. */
  mayBeGone: boolean;
  /** Listed although its deletion was acknowledged. */
  resurrected: boolean;
  /** What shows its last acknowledged edit lost, if it is. */
  lostEdit?: string;
  /** What shows it listed with a definition no request sent, if it is. */
  altered?: string;
}

/** Judges one acknowledged add, its changes in the order sent, and its listed copies. */
function judgeWord(
  ack: Ack,
  changes: readonly Change[],
  found: readonly ListedWord[],
): WordVerdict {
  const figures = noChanges();
  const deletions = changes.filter((c) => c.op === "delete");
  for (const d of deletions) {
    const f = figures.deletions;
    if (d.settled === "acknowledged") f.acked++;
    else f[d.settled]++;
  }
  const deleted = deletions.some((d) => d.settled === "acknowledged");
  const mayBeGone = deleted || deletions.some((d) => d.settled === "unknown");
  const resurrected = deleted && found.length > 0;
  if (deleted) figures.deletions[resurrected ? "resurrected" : "verified"]++;

  const edits = changes.filter((c) => c.op === "edit");
  const e = figures.edits;
  for (const c of edits) {
    if (c.settled === "acknowledged") e.acked++;
    else e[c.settled]++;
  }
  const last = edits.findLastIndex((c) => c.settled === "acknowledged");
  const allowed = new Set([
    last < 0 ? ack.definition : edits[last].definition,
    ...edits.slice(last + 1).filter((c) => c.settled === "unknown").map((c) => c.definition),
  ]);
  const wrong = found.find((w) => !allowed.has(w.definition));
  // Not listed: fine after a deletion (which superseded every edit), else the last edit went with the word.
  const held = found.length ? !wrong : mayBeGone;
  const verdict: WordVerdict = { figures, deleted, mayBeGone, resurrected };
  if (held || last < 0) {
    e.verified += e.acked;
    if (wrong) {
      verdict.altered = `${ack.id} lists ${JSON.stringify(wrong.definition)}, added with ${
        JSON.stringify(ack.definition)
      }`;
    }
    return verdict;
  }
  e.lost++;
  e.verified += e.acked - 1;
  const listedAs = wrong
    ? `lists ${JSON.stringify(wrong.definition)} (updatedAt ${wrong.updatedAt})`
    : "is not listed";
  verdict.lostEdit = `${ack.id} ${listedAs}; last acknowledged edit ${
    JSON.stringify(edits[last].definition)
  } (updatedAt ${edits[last].updatedAt})`;
  return verdict;
}

/** Every word of `store` whose word starts with `tag` (searching, then checking the start). */
async function listTag(url: string, store: StoreName, tag: string): Promise<ListedWord[]> {
  const words: ListedWord[] = [];
  for (let offset = 0;; offset += PAGE) {
    const page = await searchPage(url, store, tag, offset);
    for (const w of page) if (w.word.startsWith(`${tag} `)) words.push({ ...w, store });
    if (page.length < PAGE) return words;
  }
}

async function searchPage(
  url: string,
  store: StoreName,
  search: string,
  offset: number,
): Promise<Omit<ListedWord, "store">[]> {
  let last = "";
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    try {
      const res = await fetch(`${url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query: SEARCH, variables: { store, search, offset } }),
        signal: AbortSignal.timeout(30_000),
      });
      const body = await res.json() as GraphQLResponse;
      const words = body.data?.words as Omit<ListedWord, "store">[] | undefined;
      if (words && !body.errors) return words;
      last = body.errors?.[0]?.extensions?.code ?? `HTTP ${res.status}`;
    } catch (e) {
      last = (e as Error).name;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`cannot list ${store} to check its writes: ${last}`);
}
