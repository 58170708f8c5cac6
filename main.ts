/**
 * Entry point: the configuration, then one gateway (server/gateway.ts), or
 * one per worker thread with `WORKERS` (server/workers.ts).
 * Start with `deno task start`.
 *
 * @module
 */
import { ConfigError, loadConfig, startupLogFormat } from "./server/config.ts";
import { EmbeddedStoreError, secretsOf, startGateway } from "./server/gateway.ts";
import { runWorkers } from "./server/workers.ts";
import { exitOnSignal } from "./server/shutdown.ts";
import { gatewayLog } from "./server/log.ts";

let config;
try {
  config = loadConfig();
} catch (e) {
  if (!(e instanceof ConfigError)) throw e;
  gatewayLog(startupLogFormat()).error(`configuration error: ${e.message}`);
  Deno.exit(1);
}

if (config.workers > 1) {
  await runWorkers(config, gatewayLog(config.logFormat, secretsOf(config)));
} else {
  try {
    const gateway = await startGateway(config);
    exitOnSignal(gateway.stoppable, gateway.log.info);
  } catch (e) {
    if (!(e instanceof EmbeddedStoreError)) throw e;
    gatewayLog(config.logFormat).error(e.message);
    Deno.exit(1);
  }
}
