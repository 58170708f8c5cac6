/**
 * One worker of server/workers.ts: a whole gateway (server/gateway.ts) on
 * this thread, listening with `SO_REUSEPORT` beside the others. It starts on
 * the supervisor's `start` message, with the configuration the supervisor
 * parsed, stops on its `stop` message as a lone gateway stops on SIGTERM,
 * and spends the rate limit from the supervisor's counters.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { type Gateway, startGateway } from "./gateway.ts";
import type { Budgets, Spent } from "./rate_limit.ts";
import { shutdown } from "./shutdown.ts";
import type { FromWorker, ToWorker } from "./workers.ts";

const post = (m: FromWorker) => self.postMessage(m);

/** The rate limit's counters, kept by the supervisor and spent by message. */
class SupervisorBudgets implements Budgets {
  #seq = 0;
  #pending = new Map<number, (spent: Spent) => void>();

  spend(key: string, writes: number): Promise<Spent> {
    const id = ++this.#seq;
    const { promise, resolve } = Promise.withResolvers<Spent>();
    this.#pending.set(id, resolve);
    post({ kind: "spend", id, key, writes });
    return promise;
  }

  /** The supervisor's answer to one `spend`. */
  answer(id: number, spent: Spent): void {
    this.#pending.get(id)?.(spent);
    this.#pending.delete(id);
  }

  close(): void {}
}

const budgets = new SupervisorBudgets();
let gateway: Gateway | undefined;

self.onmessage = async (e: MessageEvent<ToWorker>) => {
  const m = e.data;
  if (m.kind === "spent") budgets.answer(m.id, m.spent);
  else if (m.kind === "start") {
    try {
      gateway = await startGateway(m.config, {
        reusePort: true,
        worker: { index: m.index, of: m.of },
        budgets: () => budgets,
      });
      post({ kind: "listening" });
    } catch (e) {
      post({ kind: "failed", message: e instanceof Error ? e.message : String(e) });
    }
  } else if (m.kind === "stop") {
    const code = gateway ? await shutdown(gateway.stoppable, m.signal, gateway.log.info) : 0;
    post({ kind: "stopped", code });
  }
};
