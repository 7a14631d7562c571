import { randomUUID } from "node:crypto";
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance } from "fastify";
import { bearerCheck } from "./auth.js";
import type { ServerContext } from "./context.js";
import { ApiError, errorBody, toApiError } from "./errors.js";
import { registerCompletionRoutes } from "./routes/completions.js";
import { registerHealthRoutes } from "./routes/health.js";
import { registerModelRoutes } from "./routes/models.js";
import { isPlaygroundAsset, registerPlaygroundRoutes } from "./routes/playground.js";
import { registerProvenanceRoutes } from "./routes/provenance.js";
import { registerRewardRoutes } from "./routes/rewards.js";

/** Paths open without the API key (load balancers probe them). */
const OPEN_PATHS = new Set(["/health"]);

/**
 * The HTTP app: OpenAI's endpoints plus tiller's, a bearer key check, OpenAI-shaped errors for
 * everything (bad JSON, oversized bodies, unknown URLs included), a request id on every response
 * and log line, and request metrics.
 */
export function buildApp(context: ServerContext, state: { closing: boolean }): FastifyInstance {
  const app: FastifyInstance = Fastify({
    loggerInstance: context.logger as FastifyBaseLogger,
    bodyLimit: context.options.bodyLimit ?? 1024 * 1024,
    genReqId: () => randomUUID(),
  });
  const check = context.options.apiKey ? bearerCheck(context.options.apiKey) : undefined;

  app.addHook("onRequest", async (request, reply) => {
    reply.header("x-request-id", request.id);
    const path = request.url.split("?")[0];
    if (check && !OPEN_PATHS.has(path) && !isPlaygroundAsset(path)) check(request.headers.authorization);
  });
  app.addHook("onResponse", async (request, reply) => {
    const endpoint = request.routeOptions.url ?? "unknown";
    context.metrics.requests.inc({ endpoint, status: String(reply.statusCode) });
    context.metrics.latency.observe({ endpoint }, reply.elapsedTime / 1000);
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const api = fromFastify(error);
    // A client that went away aborted its own request: not a server fault.
    if (reply.raw.destroyed) request.log.info({ err: error }, "the client went away");
    else if (api.status >= 500) request.log.error({ err: error }, "request failed");
    else request.log.info({ status: api.status, code: api.code }, api.message);
    return reply.status(api.status).headers(api.headers).send(errorBody(api));
  });
  app.setNotFoundHandler((request, reply) => {
    const api = new ApiError(404, `Unknown request URL: ${request.method} ${request.url}`, "unknown_url");
    return reply.status(404).send(errorBody(api));
  });

  registerModelRoutes(app, context);
  registerCompletionRoutes(app, context);
  registerRewardRoutes(app, context);
  registerProvenanceRoutes(app, context);
  registerHealthRoutes(app, context, () => state.closing);
  registerPlaygroundRoutes(app, context);
  return app;
}

/** Fastify's own errors (body parsing, size, media type) keep their status, in OpenAI's shape. */
function fromFastify(error: FastifyError): ApiError {
  if (error instanceof ApiError) return error;
  const status = error.statusCode;
  if (error.code?.startsWith("FST_") && status && status >= 400 && status < 500) {
    const code =
      error.code === "FST_ERR_CTP_BODY_TOO_LARGE"
        ? "request_too_large"
        : error.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE"
          ? "unsupported_media_type"
          : "invalid_body";
    return new ApiError(status, error.message, code);
  }
  if (error instanceof SyntaxError && status === 400)
    return new ApiError(400, `invalid JSON: ${error.message}`, "invalid_json");
  return toApiError(error);
}
