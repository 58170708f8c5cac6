/**
 * What one connection of the fault suite's load sends, request after
 * request: `addWord`, a first-page `words`, an `updateWord` of the
 * definition of one of its own words, and now and then a `deleteWord` of
 * one, in the ratio add : list : edit : delete = 4 : 4 : 3 : 1
 * ({@linkcode CYCLE}), so about one word in four ends deleted.
 *
 * An edit or a deletion picks, at random, one of this connection's live
 * words: acknowledged when added, no deletion sent for it, no edit of it
 * refused. A connection with no live word sends a `words` instead. Each edit
 * sets a new definition, unique in the run (`edit c7-42`: connection, then
 * its edit count), and sends no `expectedUpdatedAt`. A connection has one
 * request in flight, so the changes of one word are serialized and recorded
 * (as {@linkcode Change}s) in the order they were sent.
 *
 * @module
 */
import type { StoreName } from "../../../stores/types.ts";
import { type Ack, type Change, OK, type ReturnedWord, settle } from "./samples.ts";

/** The load's add. */
export const ADD = `mutation($store: Store!, $word: String!, $definition: String!) {
  addWord(store: $store, word: $word, definition: $definition) { id word definition }
}`;
/** The load's read: the first page of `words`. */
export const LIST = `query($store: Store!) { words(store: $store, limit: 20) { id } }`;
/** The load's edit: a new definition, whatever the word's revision. */
export const EDIT = `mutation($store: Store!, $id: ID!, $definition: String!) {
  updateWord(store: $store, id: $id, definition: $definition) { id definition updatedAt }
}`;
/** The load's deletion, whatever the word's revision. */
export const DELETE = `mutation($store: Store!, $id: ID!) {
  deleteWord(store: $store, id: $id) { id }
}`;

/** The operations a connection sends. */
export type MixOp = "add" | "list" | "edit" | "delete";

/**
 * One connection's requests, repeated: add : list : edit : delete = 4 : 4 : 3 : 1.
 * The deletion comes early, so that even a short load (the SIGTERM
 * scenario's workers visit each store about six times) sends some.
 */
export const CYCLE: readonly MixOp[] = [
  "add",
  "list",
  "edit",
  "add",
  "delete",
  "list",
  "add",
  "edit",
  "list",
  "add",
  "edit",
  "list",
];

/** Adds per tag: a tag's words fit in one search page (limit 1000). */
export const TAG_EVERY = 500;

/** A random tag that no other run's word contains. */
export function newTag(): string {
  return "f" + crypto.randomUUID().replaceAll("-", "").slice(0, 12);
}

/** Names words `<tag> <n>`, with a new tag every {@linkcode TAG_EVERY} words. */
export class WordNames {
  #tag = "";
  #count = 0;

  /** The next word's text. */
  next(): string {
    if (this.#count % TAG_EVERY === 0) this.#tag = newTag();
    return `${this.#tag} ${this.#count++}`;
  }
}

/** A request a connection is about to send. */
export interface Planned {
  op: MixOp;
  /** The GraphQL request as JSON. */
  body: string;
  /** The word an edit or a deletion is about. */
  target?: Ack;
  /** The definition an add or an edit sends. */
  definition?: string;
}

/** Where a connection keeps what it learnt: acknowledged adds, and every change with its end. */
export interface MixRecord {
  readonly acks: Ack[];
  readonly changes: Change[];
}

/** One connection's requests and their bookkeeping (see the module's description). */
export class ConnectionMix {
  #step = 0;
  #edits = 0;
  /** Acknowledged words of this connection that it may still edit or delete. */
  #live: Ack[] = [];

  /**
   * @param store the store every request of this connection goes to
   * @param name unique in the load, part of every edited definition ("c7")
   * @param words names the words it adds
   * @param definition the definition of the words it adds
   * @param record receives acknowledged adds and every change with its end
   */
  constructor(
    readonly store: StoreName,
    readonly name: string,
    readonly words: WordNames,
    readonly definition: string,
    readonly record: MixRecord,
  ) {}

  /** The next request to send. */
  next(): Planned {
    const store = this.store;
    let op = CYCLE[this.#step++ % CYCLE.length];
    if (op !== "add" && op !== "list" && this.#live.length === 0) op = "list";
    const target = this.#live[Math.floor(Math.random() * this.#live.length)];
    switch (op) {
      case "add": {
        const definition = this.definition;
        const variables = { store, word: this.words.next(), definition };
        return { op, definition, body: JSON.stringify({ query: ADD, variables }) };
      }
      case "list":
        return { op, body: JSON.stringify({ query: LIST, variables: { store } }) };
      case "edit": {
        const definition = `edit ${this.name}-${++this.#edits}`;
        const variables = { store, id: target.id, definition };
        return { op, target, definition, body: JSON.stringify({ query: EDIT, variables }) };
      }
      case "delete": {
        const variables = { store, id: target.id };
        return { op, target, body: JSON.stringify({ query: DELETE, variables }) };
      }
    }
  }

  /**
   * Records how `request` ended: its outcome ({@linkcode OK}, an error code,
   * a timeout…) and the word the response returned. An acknowledged add
   * becomes live; a deletion, whatever its end, and a refused edit retire
   * their word.
   */
  end(request: Planned, outcome: string, word?: ReturnedWord): void {
    const { op, target } = request;
    if (op === "add" && outcome === OK && typeof word?.word === "string") {
      const ack: Ack = {
        store: this.store,
        id: word.id,
        tag: word.word.split(" ")[0],
        word: word.word,
        definition: word.definition ?? this.definition,
        at: Date.now(),
      };
      this.record.acks.push(ack);
      this.#live.push(ack);
    }
    if ((op !== "edit" && op !== "delete") || !target) return;
    const settled = settle(outcome, word);
    this.record.changes.push({
      store: this.store,
      id: target.id,
      op,
      settled,
      definition: op === "edit" ? word?.definition ?? request.definition : undefined,
      updatedAt: op === "edit" ? word?.updatedAt ?? undefined : undefined,
    });
    if (op === "delete" || settled === "refused") {
      this.#live = this.#live.filter((a) => a !== target);
    }
  }
}
