/**
 * GraphQL over WebSocket on `/graphql` (the graphql-ws protocol,
 * `graphql-transport-ws`), with `Deno.upgradeWebSocket`, for clients that
 * prefer it to Server-Sent Events.
 *
 * - Origin: a browser's upgrade (it sends `Origin`) is refused 403 unless
 *   the origin is the gateway's own or one of `CORS_ORIGINS`: a WebSocket
 *   is not subject to CORS, so any page could open one otherwise.
 * - Tokens: with `READ_TOKEN` set, `connection_init`'s payload must carry
 *   `{ "authorization": "Bearer <token>" }` (the read or write token), else
 *   the socket is closed `4403 Forbidden`. The token then stands for the
 *   connection's `Authorization` header, so a mutation over the socket needs
 *   the write token as over HTTP.
 * - Everything else is yoga's: operations run through the same envelop
 *   plugins (document limits, the mutation rate limit, the write token),
 *   with the same context (the word-event bus, the client's address, so the
 *   subscription caps count WebSocket subscriptions too).
 * - Slow readers: a socket with more than {@linkcode MAX_BUFFERED_BYTES} unsent
 *   is closed `1008 SUBSCRIBER_TOO_SLOW` (graphql-ws itself sends without
 *   backpressure, so the bus's queue never fills for it).
 * - Shutdown: {@linkcode WebSocketServer.close} closes every socket `1001`.
 *
 * @module
 */
import { CloseCode, GRAPHQL_TRANSPORT_WS_PROTOCOL, makeServer } from "graphql-ws";
import type { ExecutionArgs } from "graphql";
import type { YogaServerInstance } from "graphql-yoga";
import { bearerCheck } from "./auth.ts";
import type { SecurityConfig } from "./config.ts";

/** What the handler needs of the configuration. */
export type WebSocketSecurity = Pick<SecurityConfig, "readToken" | "writeToken" | "corsOrigins">;

/** The upgrade request's URL and headers, copied before the upgrade (the request is gone after). */
/** Bytes a socket may have queued unsent before its client counts as too slow (1 MiB). */
export const MAX_BUFFERED_BYTES = 1024 * 1024;

type Extra = { url: string; headers: [string, string][]; clientAddress?: string };

/** The `/graphql` WebSocket endpoint. */
export class WebSocketServer {
  readonly #sockets = new Set<WebSocket>();
  readonly #server;
  readonly #origins: Set<string>;
  #closed = false;

  constructor(
    // deno-lint-ignore no-explicit-any
    yoga: YogaServerInstance<any, any>,
    security: WebSocketSecurity,
  ) {
    this.#origins = new Set(security.corsOrigins);
    const tokens = [security.readToken, security.writeToken].filter((t) => t !== undefined);
    const checks = tokens.map(bearerCheck);
    this.#server = makeServer<Record<string, unknown> | undefined, Extra>({
      connectionInitWaitTimeout: 5000,
      onConnect: (ctx) => {
        if (!security.readToken) return true;
        const auth = ctx.connectionParams?.authorization;
        if (typeof auth !== "string") return false;
        const request = new Request("http://ws/", { headers: { authorization: auth } });
        return checks.some((check) => check(request));
      },
      onSubscribe: async (ctx, _id, payload) => {
        const auth = ctx.connectionParams?.authorization;
        const headers = new Headers(ctx.extra.headers);
        headers.delete("authorization");
        if (typeof auth === "string") headers.set("authorization", auth);
        // POST: an operation over the socket is no cross-site GET (yoga refuses mutations by GET)
        const request = new Request(ctx.extra.url, { method: "POST", headers });
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          request,
          params: payload,
          clientAddress: ctx.extra.clientAddress,
        });
        let document;
        try {
          document = parse(payload.query);
        } catch (e) {
          return [e as import("graphql").GraphQLError];
        }
        const errors = validate(schema, document);
        if (errors.length) return errors;
        const args: ExecutionArgs = {
          schema,
          operationName: payload.operationName,
          document,
          variableValues: payload.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe },
        };
        return args;
      },
      execute: (args) => (args.rootValue as { execute: (a: ExecutionArgs) => never }).execute(args),
      subscribe: (args) =>
        (args.rootValue as { subscribe: (a: ExecutionArgs) => never }).subscribe(args),
    });
  }

  /** Whether `request` asks to upgrade to a WebSocket. */
  static wants(request: Request): boolean {
    return request.headers.get("upgrade")?.toLowerCase() === "websocket";
  }

  /** Upgrades `request`, or refuses it (403 for a foreign origin, 503 when shutting down). */
  upgrade(request: Request, clientAddress?: string): Response {
    if (this.#closed) return new Response("shutting down\n", { status: 503 });
    const origin = request.headers.get("origin");
    if (origin !== null && !this.#allowed(origin, request)) {
      return new Response("WebSocket origin not allowed (CORS_ORIGINS)\n", { status: 403 });
    }
    const offered = (request.headers.get("sec-websocket-protocol") ?? "").split(",")
      .map((p) => p.trim());
    // Without graphql-transport-ws among the offered protocols, graphql-ws closes it 4406.
    const protocol = offered.includes(GRAPHQL_TRANSPORT_WS_PROTOCOL)
      ? GRAPHQL_TRANSPORT_WS_PROTOCOL
      : "";
    const extra: Extra = { url: request.url, headers: [...request.headers], clientAddress };
    const { socket, response } = Deno.upgradeWebSocket(request, {
      ...(protocol ? { protocol } : {}),
      idleTimeout: 30,
    });
    this.#sockets.add(socket);
    socket.onopen = () => {
      const closed = this.#server.opened({
        protocol,
        send: (data) => {
          if (socket.readyState !== WebSocket.OPEN) return;
          // graphql-ws sends without backpressure: a reader this far behind is let go
          if (socket.bufferedAmount > MAX_BUFFERED_BYTES) {
            socket.close(1008, "SUBSCRIBER_TOO_SLOW");
            return;
          }
          socket.send(data);
        },
        close: (code, reason) => socket.close(code, reason),
        onMessage: (cb) => {
          socket.onmessage = async (event) => {
            try {
              await cb(String(event.data));
            } catch (e) {
              socket.close(CloseCode.InternalServerError, (e as Error).name);
            }
          };
        },
      }, extra);
      socket.onclose = (event) => {
        this.#sockets.delete(socket);
        closed(event.code, event.reason);
      };
    };
    return response;
  }

  /** Closes every open socket (1001, going away) and refuses new ones. */
  close(): void {
    this.#closed = true;
    for (const socket of this.#sockets) {
      try {
        socket.close(1001, "the gateway is shutting down");
      } catch {
        // already closing
      }
    }
  }

  #allowed(origin: string, request: Request): boolean {
    if (this.#origins.has(origin)) return true;
    const host = request.headers.get("host");
    try {
      return host !== null && new URL(origin).host === host;
    } catch {
      return false;
    }
  }
}
