import { isTillerError } from "../errors.js";

/** The error types OpenAI's API uses, by HTTP status. */
const TYPES: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  404: "not_found_error",
  413: "invalid_request_error",
  415: "invalid_request_error",
  429: "rate_limit_error",
  500: "server_error",
  503: "server_error",
};

/** An error the server answers with: an HTTP status and OpenAI's error body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Machine-readable reason (OpenAI's `code`), e.g. "model_not_found", "context_length_exceeded". */
    readonly code: string | null = null,
    /** The request field at fault (OpenAI's `param`), e.g. "max_tokens", "alignment.strategy". */
    readonly param: string | null = null,
    /** Extra response headers (e.g. Retry-After). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** OpenAI's error shape: `{"error": {"message", "type", "param", "code"}}`. */
export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export function errorBody(error: ApiError): ErrorBody {
  return {
    error: {
      message: error.message,
      type: TYPES[error.status] ?? (error.status >= 500 ? "server_error" : "invalid_request_error"),
      param: error.param,
      code: error.code,
    },
  };
}

/** TillerError codes that are the server's fault or state rather than the request's. */
const SERVER_SIDE = new Set(["llama-unavailable", "model-load-failed", "context-failed", "index-corrupt"]);

/**
 * Any error thrown while serving a request, as the status the client gets: an ApiError as is; a
 * TillerError (bad spec, prompt too long, …) as 400 with its code and message; anything else as
 * 500 without internals (the log has the stack).
 */
export function toApiError(error: unknown, param: string | null = null): ApiError {
  if (error instanceof ApiError) return error;
  if (isTillerError(error)) {
    // An aborted decode: the client went away or the server is shutting down, not a bad request.
    if (error.code === "aborted")
      return new ApiError(503, `the request was aborted (${error.message})`, "aborted", param);
    const status = SERVER_SIDE.has(error.code) ? 500 : 400;
    const code =
      error.code === "prompt-too-long" ? "context_length_exceeded" : error.code.replaceAll("-", "_");
    return new ApiError(status, error.message, code, param);
  }
  return new ApiError(500, "internal server error (see the server log)", "internal_error");
}
