/**
 * A GraphQL-over-SSE subscriber for tests: POSTs the subscription with
 * `Accept: text/event-stream` and collects every `next` payload.
 *
 * @module
 */
import type { GraphQLBody } from "./gateway.ts";

/** An open subscription. */
export interface Subscriber {
  /** The response's status. */
  status: number;
  /** Every `next` payload so far. */
  events: GraphQLBody[];
  /** Resolves once the server sent `complete` or closed the stream (true if `complete`). */
  ended: Promise<boolean>;
  /** Waits until `events` has `n` payloads (throws after `ms`). */
  waitFor(n: number, ms?: number): Promise<GraphQLBody[]>;
  /** Closes the connection. */
  close(): void;
}

/** Opens a subscription on `${url}/graphql`; resolves once the first ping (or answer) arrived. */
export async function subscribe(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<Subscriber> {
  const abort = new AbortController();
  const res = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "text/event-stream", ...headers },
    body: JSON.stringify({ query, variables }),
    signal: abort.signal,
  });
  const events: GraphQLBody[] = [];
  let firstChunk!: () => void;
  const started = new Promise<void>((r) => firstChunk = r);
  const ended = (async () => {
    let buffer = "";
    let complete = false;
    try {
      for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) {
        firstChunk();
        buffer += chunk;
        let at;
        while ((at = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, at);
          buffer = buffer.slice(at + 2);
          const event = block.match(/^event: (.*)$/m)?.[1];
          const data = block.split("\n").filter((l) => l.startsWith("data:"))
            .map((l) => l.slice(5).trimStart()).join("\n");
          if (event === "next") events.push(JSON.parse(data));
          if (event === "complete") complete = true;
        }
      }
    } catch {
      // aborted or reset
    }
    firstChunk();
    return complete;
  })();
  await started;
  return {
    status: res.status,
    events,
    ended,
    async waitFor(n, ms = 10_000) {
      const deadline = Date.now() + ms;
      while (events.length < n) {
        if (Date.now() > deadline) {
          throw new Error(`${events.length} of ${n} events after ${ms} ms`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      return events;
    },
    close: () => abort.abort(),
  };
}
