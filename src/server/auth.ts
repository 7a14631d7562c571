import { createHash, timingSafeEqual } from "node:crypto";
import { ApiError } from "./errors.js";

/**
 * Checks `Authorization: Bearer KEY` against the server's key in constant time: both sides are
 * hashed first, so neither the key's characters nor its length leak through timing.
 */
export function bearerCheck(key: string): (authorization: string | undefined) => void {
  const expected = digest(key);
  return (authorization) => {
    const match = /^Bearer\s+(.+)$/i.exec(authorization ?? "");
    const given = digest(match ? match[1].trim() : "");
    if (!match || !timingSafeEqual(given, expected))
      throw new ApiError(
        401,
        match
          ? "Incorrect API key provided."
          : "You didn't provide an API key. Send it as 'Authorization: Bearer KEY'.",
        "invalid_api_key",
      );
  };
}

function digest(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}
