import type { ServerResponse } from "node:http";

/**
 * A server-sent event stream as OpenAI sends it: `data: {json}` chunks, `data: [DONE]` at the
 * end. Named events (`event: tiller.step`) carry what OpenAI's stream has no place for; an
 * error after the stream started is a `data: {"error": …}` chunk (OpenAI clients raise it).
 */
export class SseStream {
  private ended = false;

  constructor(
    private readonly response: ServerResponse,
    headers: Record<string, string> = {},
  ) {
    response.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      connection: "keep-alive",
      "x-accel-buffering": "no",
      ...headers,
    });
    // Headers go out now, so the client sees the stream open before the first token.
    response.flushHeaders();
  }

  /** False once the client went away or the stream ended: nothing more can be sent. */
  get open(): boolean {
    return !this.ended && !this.response.destroyed && this.response.writable;
  }

  send(data: unknown): void {
    if (this.open) this.response.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  event(name: string, data: unknown): void {
    if (this.open) this.response.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  /** Ends the stream with `[DONE]`. */
  done(): void {
    if (this.open) this.response.write("data: [DONE]\n\n");
    this.end();
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (!this.response.destroyed) this.response.end();
  }
}
