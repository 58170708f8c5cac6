/**
 * One scrape for a process of several workers (`WORKERS`): the worker that
 * answers `/metrics` asks every other one for its series on a
 * `BroadcastChannel` and merges them with prom-client's
 * `AggregatorRegistry.aggregate`, each series by its own `aggregator`:
 * counts and histograms add up, store health takes the worst worker's,
 * process-wide series (resident memory, CPU) the largest value.
 *
 * A worker that does not answer within the slowest store ping's bound and
 * {@linkcode PEER_MARGIN_MS} fails
 * the scrape ({@linkcode PeersSilent}) rather than leave its counts out: a
 * sum that loses a worker would read as a counter reset.
 *
 * @module
 */
import { settlesWithin } from "../stores/deadline.ts";
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from "prom-client";

/**
 * How much longer than its own store pings a scrape waits for the other
 * workers' series: theirs are bounded the same way, so a stalled store
 * shows as unhealthy rather than failing every scrape.
 */
export const PEER_MARGIN_MS = 1_000;

/** Thrown by {@linkcode WorkerScrapes.scrape} when a worker did not answer in time. */
export class PeersSilent extends Error {
  override name = "PeersSilent";
}

type Series = MetricObjectWithValues<MetricValue<string>>[];

type Message =
  | { kind: "ask"; from: string; id: number }
  | { kind: "answer"; to: string; id: number; series: Series };

/** The series of every worker, merged; see the module documentation. */
export class WorkerScrapes {
  readonly #channel = new BroadcastChannel("grand-tour:metrics");
  readonly #me = crypto.randomUUID();
  #seq = 0;
  readonly #waiting = new Map<number, (series: Series) => void>();

  readonly #waitMs: number;

  /**
   * `peers`: how many other workers answer; `collect`: this worker's own
   * series, fresh (it pings the stores as a scrape does, each within
   * `pingBoundMs` at most).
   */
  constructor(
    readonly peers: number,
    readonly collect: () => Promise<Series>,
    pingBoundMs: number,
  ) {
    this.#waitMs = pingBoundMs + PEER_MARGIN_MS;
    this.#channel.onmessage = async (e: MessageEvent<Message>) => {
      const m = e.data;
      if (m.kind === "ask" && m.from !== this.#me) {
        const series = await this.collect();
        this.#channel.postMessage({ kind: "answer", to: m.from, id: m.id, series } as Message);
      } else if (m.kind === "answer" && m.to === this.#me) {
        this.#waiting.get(m.id)?.(m.series);
      }
    };
  }

  /** The Prometheus text of all workers' series together. */
  async scrape(): Promise<string> {
    const id = ++this.#seq;
    const answers: Series[] = [];
    const all = Promise.withResolvers<void>();
    this.#waiting.set(id, (series) => {
      answers.push(series);
      if (answers.length === this.peers) all.resolve();
    });
    this.#channel.postMessage({ kind: "ask", from: this.#me, id } satisfies Message);
    try {
      const [own] = await Promise.all([
        this.collect(),
        settlesWithin(all.promise, this.#waitMs),
      ]);
      if (answers.length < this.peers) {
        throw new PeersSilent(`${this.peers - answers.length} worker(s) did not answer in time`);
      }
      return await AggregatorRegistry.aggregate([own, ...answers]).metrics();
    } finally {
      this.#waiting.delete(id);
    }
  }

  close(): void {
    this.#channel.close();
  }
}
