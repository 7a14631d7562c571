import type { FastifyInstance } from "fastify";
import type { ServerContext } from "../context.js";

/** GET /v1/models (the served model, then one entry per profile) and GET /v1/models/:id. */
export function registerModelRoutes(app: FastifyInstance, context: ServerContext): void {
  const created = Math.floor(context.started / 1000);
  const entries = () => [
    {
      id: context.modelNames()[0],
      object: "model",
      created,
      owned_by: "tiller",
      tiller: { profile: false, context_size: context.model.contextSize },
    },
    ...[...context.profiles.values()].map((profile) => ({
      id: profile.name,
      object: "model",
      created,
      owned_by: "tiller",
      tiller: {
        profile: true,
        description: profile.description ?? null,
        strategy: profile.strategy ?? null,
        rewards: profile.rewards ?? [],
      },
    })),
  ];
  app.get("/v1/models", async () => ({ object: "list", data: entries() }));
  app.get<{ Params: { id: string } }>("/v1/models/:id", async (request) => {
    context.resolveModel(request.params.id);
    return entries().find((entry) => entry.id === request.params.id) ?? entries()[0];
  });
}
