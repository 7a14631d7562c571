import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ServerContext } from "../context.js";
import { registerPlaygroundApi } from "./playgroundApi.js";

/**
 * The playground: one page at `GET /`, its ES modules and stylesheet under `/playground/`, read
 * once from the folder beside this module (src/server/playground, copied to dist by the build).
 * Nothing is built at run time and nothing is fetched from elsewhere, so it works offline.
 */
const FOLDER = fileURLToPath(new URL("../playground/", import.meta.url));
const ASSET_PREFIX = "/playground/";
const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

let assets: Map<string, Asset> | undefined;

/** The page's files by URL path, loaded on first use (the file set is fixed: no path from a URL reaches the disk). */
function loadAssets(): Map<string, Asset> {
  if (assets) return assets;
  assets = new Map();
  for (const name of readdirSync(FOLDER)) {
    const type = TYPES[extname(name)];
    if (!type) continue;
    const body = readFileSync(join(FOLDER, name));
    const etag = `"${createHash("sha1").update(body).digest("base64url").slice(0, 16)}"`;
    assets.set(name === "index.html" ? "/" : `${ASSET_PREFIX}${name}`, { body, type, etag });
  }
  return assets;
}

/** Whether a request path is one of the page's own files (open without the API key: the page asks for it). */
export function isPlaygroundAsset(path: string): boolean {
  return path === "/" || path.startsWith(ASSET_PREFIX);
}

export function registerPlaygroundRoutes(app: FastifyInstance, context: ServerContext): void {
  app.get("/", (request, reply) => sendAsset("/", request, reply));
  app.get<{ Params: { file: string } }>(`${ASSET_PREFIX}:file`, (request, reply) =>
    sendAsset(`${ASSET_PREFIX}${request.params.file}`, request, reply),
  );
  registerPlaygroundApi(app, context);
}

async function sendAsset(path: string, request: FastifyRequest, reply: FastifyReply) {
  const asset = loadAssets().get(path);
  if (!asset) return reply.callNotFound();
  reply.header("etag", asset.etag).header("cache-control", "no-cache");
  if (request.headers["if-none-match"] === asset.etag) return reply.status(304).send();
  return reply.type(asset.type).send(asset.body);
}
