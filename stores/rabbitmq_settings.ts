/**
 * RabbitMQ's settings: `RABBITMQ_URL` lists one or more nodes of one cluster
 * (`amqp://user:pass@host:5672/%2F`, `amqps://` for TLS, comma-separated;
 * the store connects to the first that answers), `RABBITMQ_VIEW_PATH` where
 * this gateway keeps its view of the stream. See `settings.ts` for the
 * variables every store shares.
 *
 * @module
 */
import type { Env, StoreSettings } from "./settings.ts";

/** Where the view lives unless `RABBITMQ_VIEW_PATH` says otherwise: beside SQLite's file. */
export const DEFAULT_VIEW_PATH = "./data/rabbitmq-view.db";

/** What `RABBITMQ_*` variables the gateway reads. */
export const settings: StoreSettings = {
  store: "RABBITMQ",
  schemes: ["amqp", "amqps"],
  nodes: "many",
  replicas: false,
  noReplicas: "list every node of the cluster in RABBITMQ_URL; the stream is replicated on them",
  options: (env: Env) => ({ viewPath: env.RABBITMQ_VIEW_PATH?.trim() || DEFAULT_VIEW_PATH }),
};
