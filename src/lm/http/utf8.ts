/**
 * Whether text ending in `bytes` ends inside a multi-byte character — llama-server's own test
 * (`validate_utf8` in tools/server): a lead byte among the last four without all its continuation
 * bytes after it.
 */
export function endsInsideCharacter(bytes: Uint8Array): boolean {
  const length = bytes.length;
  for (let i = 1; i <= 4 && i <= length; i++) {
    const byte = bytes[length - i];
    if ((byte & 0xe0) === 0xc0 && i < 2) return true;
    if ((byte & 0xf0) === 0xe0 && i < 3) return true;
    if ((byte & 0xf8) === 0xf0 && i < 4) return true;
  }
  return false;
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const all = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    all.set(part, offset);
    offset += part.length;
  }
  return all;
}

const strict = new TextDecoder("utf-8", { fatal: true });

export function isValidUtf8(bytes: Uint8Array): boolean {
  try {
    strict.decode(bytes);
    return true;
  } catch {
    return false;
  }
}
