/**
 * Deadlines for request bodies. A body whose next chunk does not come within
 * `BODY_IDLE_TIMEOUT_MS`, or that is not whole within `BODY_TIMEOUT_MS`, is
 * answered 408 `REQUEST_TIMEOUT` with `Connection: close`; at shutdown,
 * {@linkcode BodyTimeout.release} answers every body still arriving 503
 * `SHUTTING_DOWN`. The idle clock runs only while the handler waits for a
 * chunk; the whole-body clock from the request's start until its last chunk.
 *
 * The request's body is replaced by a stream that reads it through the
 * deadlines (as Hono's `bodyLimit` replaces `c.req.raw`). A refused read is
 * left pending on purpose: Deno 2.9 then hands the connection to that read
 * once the answer is written, and closes the socket when the read ends (the
 * client sends or closes, or the listener shuts down). Had the read been
 * cancelled, Deno would wait for the rest of the body instead, and
 * `server.shutdown()` with it.
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { graphqlErrorResponse } from "./error_response.ts";

/** The deadlines, in milliseconds. */
export interface BodyTimeoutOptions {
  /** Longest wait for the next chunk of a body (`BODY_IDLE_TIMEOUT_MS`). */
  idleMs: number;
  /** Longest time a whole body may take to arrive (`BODY_TIMEOUT_MS`). */
  totalMs: number;
}

/** What `Deno.serve` passes next to the request (absent when the app is called directly). */
type Env = { Bindings: Partial<Deno.ServeHandlerInfo> | undefined };

/** A body the gateway stopped waiting for; Hono answers it with {@linkcode Refusal.getResponse}. */
class Refusal extends HTTPException {
  constructor(
    status: 408 | 503,
    readonly code: string,
    message: string,
    /** Whether the answer is streamed rather than of a fixed size (see {@linkcode getResponse}). */
    readonly streamed = false,
  ) {
    super(status, { message });
  }

  /**
   * A new GraphQL error response each time. Deno 2.9 settles `completed` of
   * a fixed-size answer when it takes it, of a streamed one once it is
   * written, and {@linkcode BodyTimeout.release} needs the latter. Only
   * those answers are streamed: after a streamed answer, the read left
   * pending no longer notices the client sending or closing, which matters
   * for a 408 and not at shutdown, when the read is cancelled.
   */
  override getResponse(): Response {
    const fixed = graphqlErrorResponse(this.status, this.code, this.message, {
      connection: "close",
    });
    if (!this.streamed) return fixed;
    return new Response(fixed.body!.pipeThrough(new TransformStream()), fixed);
  }
}

/** A 408 `REQUEST_TIMEOUT` refusal. */
const timedOut = (message: string) => new Refusal(408, "REQUEST_TIMEOUT", message);

/** The deadlines of every request body, and their release at shutdown. */
export class BodyTimeout {
  readonly #idleMs: number;
  readonly #totalMs: number;
  readonly #stopping = new AbortController();
  /** One promise per body still arriving: settles once it has arrived or its answer is written. */
  readonly #arriving = new Set<Promise<void>>();

  constructor({ idleMs, totalMs }: BodyTimeoutOptions) {
    this.#idleMs = idleMs;
    this.#totalMs = totalMs;
  }

  /** The middleware: reads the request's body through the deadlines. */
  readonly middleware: MiddlewareHandler<Env> = async (c, next) => {
    const body = c.req.raw.body;
    if (!body) return await next();
    const settled = Promise.withResolvers<void>();
    this.#arriving.add(settled.promise);
    settled.promise.then(() => this.#arriving.delete(settled.promise));

    const refuse = new AbortController();
    const total = setTimeout(
      () => refuse.abort(timedOut(`The request body did not arrive within ${this.#totalMs} ms.`)),
      this.#totalMs,
    );
    const stop = () =>
      refuse.abort(new Refusal(503, "SHUTTING_DOWN", "The gateway is shutting down.", true));
    if (this.#stopping.signal.aborted) stop();
    else this.#stopping.signal.addEventListener("abort", stop, { once: true });

    let refusal: Refusal | undefined;
    c.req.raw = new Request(c.req.raw, {
      body: this.#guard(body, refuse.signal, {
        arrived: () => {
          clearTimeout(total);
          settled.resolve();
        },
        refused: (r) => refusal = r,
      }),
    });
    try {
      await next();
    } finally {
      clearTimeout(total);
      this.#stopping.signal.removeEventListener("abort", stop);
    }
    if (!refusal) {
      settled.resolve();
      return;
    }
    // Whatever the handler made of the failed read gives way to the refusal, headers included.
    c.res = undefined;
    c.res = refusal.getResponse();
    const written = c.env?.completed ?? Promise.resolve();
    written.then(settled.resolve, settled.resolve);
  };

  /**
   * For shutdown: answers 503 `SHUTTING_DOWN` to every body still arriving
   * (and to any that starts from now on), and resolves once those answers
   * are written, so that `server.shutdown()` finds their connections handed
   * to their pending reads, which it cancels.
   */
  async release(): Promise<void> {
    this.#stopping.abort();
    await Promise.all(this.#arriving);
  }

  /** `body`, read chunk by chunk while the idle deadline and `refuse` allow. */
  #guard(
    body: ReadableStream<Uint8Array>,
    refuse: AbortSignal,
    on: { arrived: () => void; refused: (refusal: Refusal) => void },
  ): ReadableStream<Uint8Array> {
    const idleMs = this.#idleMs;
    let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        reader ??= body.getReader();
        const read = reader.read();
        try {
          const { done, value } = await within(read, idleMs, refuse);
          if (done) {
            on.arrived();
            controller.close();
          } else {
            controller.enqueue(value);
          }
        } catch (e) {
          if (e instanceof Refusal) {
            on.refused(e);
            // Left pending (see the module's note); once it ends, the body is let go.
            const owner = reader;
            read.then(() => owner.cancel(), () => {}).catch(() => {});
          }
          controller.error(e);
        }
      },
      cancel(reason) {
        return reader ? reader.cancel(reason) : body.cancel(reason);
      },
    }, { highWaterMark: 0 });
  }
}

/**
 * `read`'s result, or a rejection with a 408 {@linkcode Refusal} after
 * `idleMs`, or with `refuse`'s reason once it aborts, whichever comes first.
 */
function within<T>(read: Promise<T>, idleMs: number, refuse: AbortSignal): Promise<T> {
  const { promise, resolve, reject } = Promise.withResolvers<T>();
  const onAbort = () => reject(refuse.reason);
  const idle = setTimeout(
    () => reject(timedOut(`The request body stopped arriving for ${idleMs} ms.`)),
    idleMs,
  );
  refuse.addEventListener("abort", onAbort, { once: true });
  if (refuse.aborted) onAbort();
  read.then(resolve, reject);
  return promise.finally(() => {
    clearTimeout(idle);
    refuse.removeEventListener("abort", onAbort);
  });
}
