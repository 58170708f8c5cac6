/**
 * Read/write splitting, once for every store with read replicas
 * (`<STORE>_READ_URL`): writes go to the primary, reads to the replicas in
 * turn, with read-your-writes and no failed read when a replica is lost.
 *
 * - **Read-your-writes.** After every acknowledged write the store reports
 *   the primary's replication position ({@linkcode ReadRouter.beforeWrite}).
 *   A read goes to a replica only once that replica has applied the latest
 *   such position, waiting at most `waitMs`; otherwise it goes to the
 *   primary. Positions are the database's own (a PostgreSQL WAL LSN, a
 *   MariaDB GTID position, a Redis replication offset): the store says how to
 *   read and compare them ({@linkcode Positions}).
 * - **A lost position costs no write.** When the position cannot be read
 *   after a write (the query fails, or takes longer than `pingTimeoutMs`),
 *   the write stays acknowledged, but no replica can be shown to have it:
 *   every read goes to the primary (to a replica only when the primary fails
 *   it or is down, as below) until the position of a write begun after that
 *   failure is recorded. One begun earlier does not count: it may have
 *   committed before the lost one, and MariaDB's `@@last_gtid` is that
 *   write's own. The primary is pinged at once, as after a failed read.
 * - **A replica is waited on once per lag.** One that did not apply a
 *   position within `waitMs` is not waited on again for that position, nor
 *   for an earlier or later one in the same history: reads pass it over at
 *   once until its applied position, polled every `probeMs`, covers the one
 *   it missed (it is used without a wait for any position it is seen to
 *   cover). A later write would only add to what it lacks, so waiting again
 *   before it catches up would cost every read `waitMs` under a steady write
 *   load. A position in a new history (neither covers the other: a restarted
 *   Redis primary's new replication id) ends this, as the one missed can
 *   then never be covered; a read waits on it again.
 * - **A lost primary costs no read either.** A read that fails on the
 *   primary is served by a replica that answers, that read only, and a ping
 *   of the primary goes out at once. The primary counts as down only once a
 *   ping confirms it (bounded by `pingTimeoutMs`, whoever sends it); until
 *   then reads still try it first, so read-your-writes holds through a blip.
 *   While it is down (no read, write or ping has succeeded since), a read
 *   that no replica could serve with this gateway's latest write goes to a
 *   replica that answers anyway, rather than fail: slightly stale at worst (a
 *   write the primary acknowledged just before it went down may not have
 *   reached the replica), and with the same data when the replica merely
 *   started a new history (a restarted Redis primary has a new replication
 *   id). Such a primary is pinged with the replicas' probes, and
 *   read-your-writes holds again as soon as it answers. (The ping is the
 *   store's, as given to {@linkcode ReadRouter.ping}: a store that was never
 *   pinged cannot be found down, and its reads keep trying the primary.)
 * - **A lost replica costs no read.** Each replica is probed every
 *   `probeMs` (its applied position, bounded by `probeTimeoutMs`); one that
 *   fails a probe or a read is left out until a probe succeeds again. A read
 *   that fails or takes longer than `readTimeoutMs` on a replica is served by
 *   the next replica or the primary.
 * - **Lag** is measured against this gateway's own writes: how long ago the
 *   oldest write the replica has not applied yet was acknowledged (0 when it
 *   has them all; a write whose position was lost does not count), so it
 *   reads the same on every database.
 * - **Workers share their writes.** With several gateway workers in one
 *   process (`WORKERS`), a client's read may reach another worker than its
 *   write. So each router of a store tells the others, on a
 *   `BroadcastChannel`, the position of every write it recorded, and the
 *   write is acknowledged only once they all confirmed (bounded by `waitMs`):
 *   any read that starts after the acknowledgement, in any worker, waits for
 *   that position as for its own. A position learnt so does not end a lost
 *   position's rule above, since it may have been read before the lost write.
 * - **What each node served** is on its line of {@linkcode ReadRouter.nodes}:
 *   its reads since start and, for a replica, the read-your-writes waits
 *   ({@linkcode ReadWaits}), what the bounded wait costs reads.
 *
 * @module
 */
import { setTimeout as sleep } from "node:timers/promises";
import { deadline, settlesWithin } from "./deadline.ts";
import type { StoreConfig } from "./types.ts";

/**
 * Thrown by a store's primary ping when the primary answers but cannot serve
 * until the store is opened again (its table or database was dropped): it
 * fails the store's ping even while replicas serve reads, so the gateway's
 * wrapper reconnects and the store creates what is missing.
 */
export class PrimaryLostSchema extends Error {
  override name = "PrimaryLostSchema";
}

/** How a store reads and compares its replication positions. */
export interface Positions<P> {
  /** Whether a replica that applied `applied` has every change up to `target`. */
  covers(applied: P, target: P): boolean;
  /** The later of two positions reported by the primary (both may be from concurrent writes). */
  later(a: P, b: P): P;
}

/** One read replica, as the store opened it. */
export interface Replica<P, R> {
  /** What reads run against: a pool, a client. */
  reader: R;
  /** The position this replica has applied now (one cheap query); rejects when it does not answer. */
  applied(): Promise<P>;
  /** Releases its connections; never rejects. */
  close(): Promise<void>;
}

/** One node's state for `/readyz` and the `stores` query. */
export interface NodeStatus {
  role: "primary" | "replica";
  healthy: boolean;
  /** How far behind this gateway's writes the replica is, in ms (replicas only). */
  lagMs?: number;
  /** Why it is left out, when it is (fixed wording: never a host, URL or driver message). */
  message?: string;
  /** Reads this node served since the gateway started. */
  reads: number;
  /** Replicas: the reads that waited for it to apply this gateway's latest write. */
  readWaits?: ReadWaits;
}

/**
 * Read-your-writes waits on one replica: reads that came before it had
 * applied this gateway's latest write and waited (at most `waitMs`) for it.
 * Reads that passed it over without a wait (it missed an earlier position,
 * see the module documentation) are not counted.
 */
export interface ReadWaits {
  /** Reads that waited, since the gateway started. */
  count: number;
  /** Of them, those whose replica did not catch up in time or failed: served elsewhere. */
  gaveUp: number;
  /** Median and 99th percentile (nearest rank) of the latest {@linkcode REMEMBERED_WAITS} waits, in ms. */
  p50Ms?: number;
  p99Ms?: number;
}

/** Reads served since start, by where they went. */
export interface ReadCounts {
  replica: number;
  primary: number;
  /** How long (ms) reads waited for a replica to catch up: the latest {@linkcode REMEMBERED_WAITS}. */
  waits: number[];
}

/**
 * What {@linkcode ReadRouter.beforeWrite} returns, to call once the primary
 * acknowledged the write: `position` reads the primary's position, which
 * covers the write; `onTimeout` runs if it takes longer than `pingTimeoutMs`
 * (to destroy the connection it runs on). Never rejects.
 */
export type AfterWrite<P> = (position: () => Promise<P>, onTimeout?: () => void) => Promise<void>;

/** Timing of the router; every field has a default. */
export interface RouterOptions {
  /** Longest a read waits for a replica to apply this gateway's last write (default 250 ms). */
  waitMs?: number;
  /** How often the position is polled while a read waits (default 2 ms). */
  pollMs?: number;
  /** Longest a read may take on a replica before it is served elsewhere (default 800 ms). */
  readTimeoutMs?: number;
  /** How often each replica is probed (default 250 ms). */
  probeMs?: number;
  /** Longest a probe may take (default 300 ms). */
  probeTimeoutMs?: number;
  /**
   * Longest the primary's ping may take, from the store or the probes, and
   * the position query after a write (default 1000 ms).
   */
  pingTimeoutMs?: number;
  /**
   * Share write positions with the routers of this store in the other
   * workers of this process: the channel's name and how many other workers
   * there are (none by default).
   */
  shared?: { channel: string; peers: number };
}

/** The options of `store`'s router given its configuration: shared with the other workers' routers. */
export function routerOptions(store: string, config: StoreConfig): RouterOptions {
  return { shared: { channel: store, peers: (config.workers ?? 1) - 1 } };
}

/** A message between the routers of one store in several workers. */
type PeerMessage<P> =
  | { kind: "wrote"; from: string; seq: number; position: P }
  | { kind: "learnt"; to: string; seq: number };

interface Node<P, R> {
  replica: Replica<P, R>;
  /** The latest position it was seen to have applied. */
  known?: P;
  /** A target it did not apply within `waitMs`, until it is seen to have applied it. */
  missed?: P;
  /** Why it is left out, when it is. */
  out?: string;
  /** The one position query in flight, shared by every read that waits, and when it was sent. */
  polling?: Promise<P>;
  pollingSince?: number;
  /** Reads it served. */
  reads: number;
  /** Reads that waited for it, those that gave up, and the latest waits (ms). */
  waited: number;
  gaveUp: number;
  waits: number[];
}

/** Most recent writes remembered for the lag figure. */
const REMEMBERED_WRITES = 1_000;
/** Most recent read-your-writes waits remembered in {@linkcode ReadCounts.waits}. */
export const REMEMBERED_WAITS = 10_000;

/** Routes reads among a primary and its replicas; see the module documentation. */
export class ReadRouter<P, R> {
  readonly counts: ReadCounts = { replica: 0, primary: 0, waits: [] };
  #primary: R;
  #nodes: Node<P, R>[];
  #positions: Positions<P>;
  #opts: Required<Omit<RouterOptions, "shared">>;
  #target: P | undefined;
  /** Writes begun ({@linkcode beforeWrite}): the latest one's number. */
  #begun = 0;
  /** The highest number of a write whose position was recorded. */
  #recorded = 0;
  /** `#begun` when a position was last lost: while above `#recorded`, reads go to the primary. */
  #lost = 0;
  /** Acknowledged writes, oldest first: [position, time]. */
  #writes: [P, number][] = [];
  #next = 0;
  #probing = new AbortController();
  #primaryDown: string | undefined;
  /** The store's primary ping, as last given to {@linkcode ping}: probes a primary that is down. */
  #primaryPing: (() => Promise<void>) | undefined;
  #primaryPinging = false;
  #peers: { channel: BroadcastChannel; count: number; id: string } | undefined;
  #shareSeq = 0;
  /** Shared writes awaiting their confirmations: seq → [confirmations left, resolve]. */
  #sharing = new Map<number, [number, () => void]>();

  constructor(
    primary: R,
    replicas: Replica<P, R>[],
    positions: Positions<P>,
    opts: RouterOptions = {},
  ) {
    this.#primary = primary;
    this.#nodes = replicas.map((replica) => ({
      replica,
      reads: 0,
      waited: 0,
      gaveUp: 0,
      waits: [],
    }));
    this.#positions = positions;
    this.#opts = {
      waitMs: opts.waitMs ?? 250,
      pollMs: opts.pollMs ?? 2,
      readTimeoutMs: opts.readTimeoutMs ?? 800,
      probeMs: opts.probeMs ?? 250,
      probeTimeoutMs: opts.probeTimeoutMs ?? 300,
      pingTimeoutMs: opts.pingTimeoutMs ?? 1_000,
    };
    if (this.#nodes.length) void this.#probeLoop(this.#probing.signal);
    if (this.#nodes.length && opts.shared && opts.shared.peers > 0) this.#joinPeers(opts.shared);
  }

  #joinPeers(shared: { channel: string; peers: number }): void {
    const channel = new BroadcastChannel(`read-your-writes:${shared.channel}`);
    const id = crypto.randomUUID();
    this.#peers = { channel, count: shared.peers, id };
    channel.onmessage = (e: MessageEvent<PeerMessage<P>>) => {
      const m = e.data;
      if (m.kind === "wrote" && m.from !== id) {
        this.#learn(m.position);
        channel.postMessage({ kind: "learnt", to: m.from, seq: m.seq } satisfies PeerMessage<P>);
      } else if (m.kind === "learnt" && m.to === id) {
        const waiting = this.#sharing.get(m.seq);
        if (waiting && --waiting[0] === 0) waiting[1]();
      }
    };
  }

  /** Tells the other workers' routers of `position`; resolves once all confirmed, or after `waitMs`. */
  async #share(position: P): Promise<void> {
    const peers = this.#peers;
    if (!peers) return;
    const seq = ++this.#shareSeq;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#sharing.set(seq, [peers.count, resolve]);
    peers.channel.postMessage({ kind: "wrote", from: peers.id, seq, position } as PeerMessage<P>);
    await settlesWithin(promise, this.#opts.waitMs);
    this.#sharing.delete(seq);
  }

  /**
   * Read-your-writes for one write: call it before the write goes to the
   * primary, and what it returns once the primary acknowledged the write
   * ({@linkcode AfterWrite}). The write stands whatever the position query
   * does; see the module documentation. Without replicas nothing is queried.
   */
  beforeWrite(): AfterWrite<P> {
    if (!this.#nodes.length) return () => Promise.resolve();
    const write = ++this.#begun;
    return async (position, onTimeout) => {
      try {
        const ms = this.#opts.pingTimeoutMs;
        const at = await deadline(position(), ms, "no position in time", onTimeout);
        this.#record(at, write);
        await this.#share(at);
      } catch {
        this.#lost = this.#begun; // any write begun so far may have committed before this one
        this.#probePrimary();
      }
    };
  }

  /**
   * Records the primary's position read after every write it acknowledged so
   * far: later reads must see it. Stores use {@linkcode beforeWrite}.
   */
  wrote(position: P): void {
    this.#record(position, ++this.#begun);
  }

  #record(position: P, write: number): void {
    this.#recorded = Math.max(this.#recorded, write);
    this.#learn(position);
  }

  /** Makes reads wait for `position`: recorded here, or another worker's ({@linkcode RouterOptions.shared}). */
  #learn(position: P): void {
    this.#target = this.#target === undefined
      ? position
      : this.#positions.later(this.#target, position);
    this.#writes.push([position, Date.now()]);
    if (this.#writes.length > REMEMBERED_WRITES) this.#writes.shift();
    this.#primaryDown = undefined; // it just acknowledged a write
  }

  /**
   * Runs `read` on a replica that has this gateway's writes, else on the
   * primary; while the primary does not answer, on a replica that answers
   * (see the module documentation).
   */
  async read<T>(read: (reader: R) => Promise<T>): Promise<T> {
    const target = this.#target;
    /** The first replica passed over only because it had not confirmed the latest write. */
    let behind: Node<P, R> | undefined;
    // A write's position is lost: no replica can be shown to have it, one is a fallback at most.
    const lost = this.#lost > this.#recorded;
    if (lost) behind = this.#pick();
    for (let tries = 0; !lost && tries < this.#nodes.length; tries++) {
      const node = this.#pick();
      if (!node) break;
      if (target !== undefined && !(await this.#caughtUp(node, target))) {
        behind ??= node;
        continue;
      }
      try {
        return await this.#readOn(node, read);
      } catch {
        // left out by #readOn; the next replica or the primary serves it
      }
    }
    const fallback = behind?.out === undefined ? behind : undefined;
    if (fallback && this.#primaryDown !== undefined) return await this.#readOn(fallback, read);
    try {
      const out = await read(this.#primary);
      this.counts.primary++;
      this.#primaryDown = undefined;
      return out;
    } catch (e) {
      this.#probePrimary(); // down only once a ping says so: one failed read may be a blip
      if (!fallback || fallback.out !== undefined) throw e;
      return await this.#readOn(fallback, read).catch(() => Promise.reject(e));
    }
  }

  /** `read` on replica `node`, bounded; one that fails or takes too long is left out, and it rejects. */
  async #readOn<T>(node: Node<P, R>, read: (reader: R) => Promise<T>): Promise<T> {
    try {
      const out = await deadline(
        read(node.replica.reader),
        this.#opts.readTimeoutMs,
        "the replica did not answer in time",
      );
      this.counts.replica++;
      node.reads++;
      return out;
    } catch (e) {
      node.out = "a read failed or timed out";
      throw e;
    }
  }

  /**
   * The store's ping: `primaryPing`, bounded by `pingTimeoutMs` and
   * remembered for the primary's line in {@linkcode nodes} and its probes. A
   * primary that does not answer fails the ping only when no replica serves
   * either: while one does, the store still serves reads (its writes fail on
   * their own), so it is not reconnected as a whole and `/readyz` keeps it
   * ready. Without replicas it is `primaryPing` as it is.
   */
  async ping(primaryPing: () => Promise<void>): Promise<void> {
    if (!this.#nodes.length) return await primaryPing();
    this.#primaryPing = primaryPing;
    try {
      await this.#pingPrimary(primaryPing);
      this.#primaryDown = undefined;
    } catch (e) {
      if (e instanceof PrimaryLostSchema) throw e;
      this.#primaryDown = "not answering";
      if (!this.anyReplicaServing) throw e;
    }
  }

  /** Each node's role, health and lag: the primary (as the last ping found it), then every replica. */
  nodes(): NodeStatus[] {
    if (!this.#nodes.length) return [];
    const primary: NodeStatus = {
      role: "primary",
      healthy: this.#primaryDown === undefined,
      reads: this.counts.primary,
    };
    if (this.#primaryDown) primary.message = this.#primaryDown;
    return [primary, ...this.#replicas()];
  }

  #replicas(): NodeStatus[] {
    const now = Date.now();
    return this.#nodes.map((n) => {
      const oldest = n.known === undefined
        ? this.#writes[0]
        : this.#writes.find(([p]) => !this.#positions.covers(n.known!, p));
      const sorted = Float64Array.from(n.waits).sort();
      const readWaits: ReadWaits = { count: n.waited, gaveUp: n.gaveUp };
      if (sorted.length) {
        readWaits.p50Ms = round(nearestRank(sorted, 50));
        readWaits.p99Ms = round(nearestRank(sorted, 99));
      }
      return {
        role: "replica",
        healthy: n.out === undefined,
        lagMs: oldest ? now - oldest[1] : 0,
        ...(n.out ? { message: n.out } : {}),
        reads: n.reads,
        readWaits,
      };
    });
  }

  /** Whether any replica is in rotation. */
  get anyReplicaServing(): boolean {
    return this.#nodes.some((n) => n.out === undefined);
  }

  /** Stops probing and closes every replica; never rejects. */
  async close(): Promise<void> {
    this.#probing.abort();
    this.#peers?.channel.close();
    for (const [, resolve] of this.#sharing.values()) resolve();
    await Promise.all(this.#nodes.map((n) => n.replica.close().catch(() => {})));
  }

  /** The next replica in rotation, round robin; undefined when every one is out. */
  #pick(): Node<P, R> | undefined {
    for (let i = 0; i < this.#nodes.length; i++) {
      const node = this.#nodes[this.#next++ % this.#nodes.length];
      if (node.out === undefined) return node;
    }
    return undefined;
  }

  /**
   * Waits (bounded) until `node` has applied `target`; false when it did not
   * in time or failed, and at once when it missed a target in the same
   * history (earlier or later) and has not been seen to apply that one since.
   */
  async #caughtUp(node: Node<P, R>, target: P): Promise<boolean> {
    const positions = this.#positions;
    if (node.known !== undefined && positions.covers(node.known, target)) return true;
    if (node.missed !== undefined) {
      const missed = node.missed;
      if (positions.covers(target, missed) || positions.covers(missed, target)) return false;
      node.missed = undefined; // a new history (a restarted Redis primary): worth a wait again
    }
    const t0 = performance.now();
    const until = t0 + this.#opts.waitMs;
    node.waited++;
    const done = (caughtUp: boolean) => {
      const ms = performance.now() - t0;
      remember(node.waits, ms);
      if (caughtUp) remember(this.counts.waits, ms);
      else {
        node.gaveUp++;
        node.missed = target;
      }
      return caughtUp;
    };
    for (;;) {
      try {
        const left = Math.max(1, until - performance.now());
        const applied = await deadline(this.#poll(node), left, "no position in time");
        if (this.#positions.covers(applied, target)) return done(true);
      } catch {
        return done(false);
      }
      if (performance.now() + this.#opts.pollMs >= until) return done(false);
      await sleep(this.#opts.pollMs);
    }
  }

  /**
   * One position query per node at a time, shared by every read waiting on
   * it; one that has not answered within the probe timeout is abandoned
   * (a stalled server may never answer it) and the next caller sends another.
   */
  #poll(node: Node<P, R>): Promise<P> {
    const now = performance.now();
    if (node.polling && now - (node.pollingSince ?? now) <= this.#opts.probeTimeoutMs) {
      return node.polling;
    }
    const polling = node.replica.applied().then((p) => {
      node.known = p;
      if (node.missed !== undefined && this.#positions.covers(p, node.missed)) {
        node.missed = undefined;
      }
      return p;
    }).finally(() => {
      if (node.polling === polling) node.polling = undefined;
    });
    polling.catch(() => {});
    node.polling = polling;
    node.pollingSince = now;
    return polling;
  }

  /** One ping of the primary, unless one is in flight: it is down or up as the ping finds it. */
  #probePrimary(): void {
    const ping = this.#primaryPing;
    if (!ping || this.#primaryPinging) return;
    this.#primaryPinging = true;
    this.#pingPrimary(ping).then(
      () => this.#primaryDown = undefined,
      () => this.#primaryDown = "not answering",
    ).finally(() => this.#primaryPinging = false);
  }

  /** `ping`, bounded: a driver's ping may hang longer than the gateway's request timeout. */
  async #pingPrimary(ping: () => Promise<void>): Promise<void> {
    await deadline(ping(), this.#opts.pingTimeoutMs, "the primary did not answer in time");
  }

  async #probeLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      if (this.#primaryDown !== undefined) this.#probePrimary();
      await Promise.all(this.#nodes.map(async (node) => {
        try {
          await deadline(this.#poll(node), this.#opts.probeTimeoutMs, "did not answer in time");
          node.out = undefined;
        } catch {
          node.out = "not answering";
        }
      }));
      await sleep(this.#opts.probeMs, undefined, { signal }).catch(() => {});
    }
  }
}

/** Appends `ms`, keeping the latest {@linkcode REMEMBERED_WAITS}. */
function remember(waits: number[], ms: number): void {
  waits.push(ms);
  if (waits.length > REMEMBERED_WAITS) waits.shift();
}

/** The `p`th percentile of ascending `sorted` (nearest rank); `sorted` is not empty. */
function nearestRank(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p / 100 * sorted.length) - 1))];
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
