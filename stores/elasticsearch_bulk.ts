/**
 * Concurrent adds to Elasticsearch, coalesced into `_bulk` requests.
 *
 * Elasticsearch's own advice for indexing many documents is the bulk API: one
 * request, one refresh wait, one round of replication for many documents,
 * instead of one of each per document. An add arriving while no bulk request
 * is in flight is sent at once, alone; adds arriving while one is in flight
 * wait for it and then go together in the next request (at most
 * {@linkcode MAX_BULK} per request). So a single add costs what it did, and
 * 200 adds at once cost a handful of requests instead of 200 that each wait
 * for a refresh on a busy cluster.
 *
 * Batching is DataLoader's (`batchScheduleFn` holds a batch back while the
 * previous request is in flight); each add gets its own outcome from its
 * item of the bulk response.
 *
 * @module
 */
import DataLoader from "dataloader";
import type { NewWord } from "./types.ts";

/** Most adds sent in one bulk request. */
export const MAX_BULK = 500;

/** Sends `records` in one request: per record, `true` once stored, else why not. */
export type SendBulk = (records: readonly NewWord[]) => Promise<(true | Error)[]>;

/** Coalesces concurrent {@linkcode BulkAdds.add} calls into bulk requests sent one at a time. */
export class BulkAdds {
  #inFlight: Promise<unknown> | undefined;
  #loader: DataLoader<NewWord, true>;

  constructor(send: SendBulk) {
    this.#loader = new DataLoader<NewWord, true>((records) => this.#send(send, records), {
      cache: false,
      maxBatchSize: MAX_BULK,
      // The batch collects adds until the request in flight (if any) is answered.
      batchScheduleFn: (dispatch) => {
        const busy = this.#inFlight;
        if (busy) busy.then(dispatch, dispatch);
        else queueMicrotask(dispatch);
      },
    });
  }

  /** Resolves once `record` is stored (and visible to search); rejects with why not. */
  async add(record: NewWord): Promise<void> {
    await this.#loader.load(record);
  }

  #send(send: SendBulk, records: readonly NewWord[]): Promise<(true | Error)[]> {
    const sending = send(records);
    this.#inFlight = sending;
    const done = () => {
      if (this.#inFlight === sending) this.#inFlight = undefined;
    };
    sending.then(done, done);
    return sending;
  }
}
