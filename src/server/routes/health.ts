import type { FastifyInstance } from "fastify";
import type { ServerContext } from "../context.js";

/** GET /health (no key needed; 503 while shutting down) and GET /metrics (Prometheus text). */
export function registerHealthRoutes(
  app: FastifyInstance,
  context: ServerContext,
  closing: () => boolean,
): void {
  app.get("/health", async (_request, reply) => {
    const body = {
      status: closing() ? "shutting_down" : "ok",
      model: context.model.id,
      profiles: [...context.profiles.keys()],
      index: context.index ? { documents: context.index.documents, tokens: context.index.size } : null,
      running: context.admission.running,
      queued: context.admission.queued,
      uptime_s: Math.round((Date.now() - context.started) / 1000),
    };
    return reply.status(closing() ? 503 : 200).send(body);
  });
  app.get("/metrics", async (_request, reply) => {
    reply.header("content-type", context.metrics.registry.contentType);
    return context.metrics.registry.metrics();
  });
}
