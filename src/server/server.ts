import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import { buildApp } from "./app.js";
import { ServerContext, type ServerOptions } from "./context.js";

export interface ListenOptions extends ServerOptions {
  /** Interface to bind. Defaults to 127.0.0.1 (loopback only). */
  host?: string;
  /** Port; 0 picks a free one. Defaults to 8080. */
  port?: number;
  /** How long shutdown waits for in-flight requests before aborting them. Defaults to 30 000 ms. */
  shutdownTimeoutMs?: number;
}

export interface RunningServer {
  /** `http://host:port`. */
  url: string;
  port: number;
  app: FastifyInstance;
  context: ServerContext;
  /**
   * Graceful stop: stop accepting (new requests get 503, waiting ones too), let in-flight
   * requests finish for up to `shutdownTimeoutMs`, then abort what is left. The model is not
   * disposed (the caller owns it).
   */
  close(): Promise<void>;
}

/** Starts `tiller serve`'s HTTP server on a loaded model. */
export async function startServer(options: ListenOptions): Promise<RunningServer> {
  const context = new ServerContext(options);
  const state = { closing: false };
  const app = buildApp(context, state);
  await app.listen({ host: options.host ?? "127.0.0.1", port: options.port ?? 8080 });
  const address = app.server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  let closed: Promise<void> | undefined;
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    app,
    context,
    close() {
      closed ??= (async () => {
        state.closing = true;
        context.admission.close();
        const finished = app.close();
        // A keep-alive connection whose last response ends after close() began would otherwise
        // stay open until its keep-alive timeout: close each one as soon as it goes idle.
        const sweep = setInterval(() => app.server.closeIdleConnections(), 50);
        finished.finally(() => clearInterval(sweep));
        const timeout = options.shutdownTimeoutMs ?? 30_000;
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<"late">((resolve) => {
          timer = setTimeout(() => resolve("late"), timeout);
        });
        if ((await Promise.race([finished.then(() => "done" as const), late])) === "late") {
          context.logger.warn(`in-flight requests still running after ${timeout} ms; aborting them`);
          context.shutdown.abort(new Error("the server is shutting down"));
          await finished;
        }
        clearTimeout(timer);
      })();
      return closed;
    },
  };
}
