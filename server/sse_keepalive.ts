/**
 * Keep-alive comments on Server-Sent Events responses every
 * `SUBSCRIPTION_PING_MS`, so proxies and clients with idle timeouts keep a
 * quiet subscription open (graphql-yoga pings too, every 12 s, fixed).
 * A ping is only written between events, never inside one: yoga writes an
 * event's `event:` and `data:` lines as separate chunks.
 *
 * @module
 */

const PING = new TextEncoder().encode(":\n\n");

/** `response` with pings every `intervalMs` when it is an event stream; else `response` itself. */
export function withKeepAlive(response: Response, intervalMs: number): Response {
  if (!response.body || !response.headers.get("content-type")?.startsWith("text/event-stream")) {
    return response;
  }
  let timer: ReturnType<typeof setInterval> | undefined;
  let betweenEvents = true;
  const pinged = new TransformStream<Uint8Array, Uint8Array>({
    start(controller) {
      timer = setInterval(() => {
        // A client not reading gets no more than a few pings queued (the readable's mark is 0).
        const queued = controller.desiredSize;
        if (!betweenEvents || queued === null || queued < -4) return;
        try {
          controller.enqueue(PING);
        } catch {
          clearInterval(timer);
        }
      }, intervalMs);
    },
    transform(chunk, controller) {
      const n = chunk.length;
      betweenEvents = n >= 2 ? chunk[n - 2] === 10 && chunk[n - 1] === 10 : betweenEvents;
      controller.enqueue(chunk);
    },
    flush() {
      clearInterval(timer);
    },
    cancel() {
      clearInterval(timer);
    },
  });
  return new Response(response.body.pipeThrough(pinged), response);
}
