/**
 * Single-file outputs named on the command line (`align --trace FILE`): checked before any work,
 * so a path that cannot be written fails in a second instead of after the computation.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fsError } from "../util/fsErrors.js";

/** Throws one line naming `file` unless its folder exists and is writable and `file` is not a folder. */
export function checkOutputFile(file: string, flag: string): void {
  const folder = path.dirname(path.resolve(file));
  try {
    if (fs.existsSync(file) && fs.statSync(file).isDirectory())
      throw Object.assign(new Error("is a folder"), { code: "EISDIR" });
    if (!fs.statSync(folder).isDirectory())
      throw Object.assign(new Error("not a folder"), { code: "ENOTDIR" });
    fs.accessSync(folder, fs.constants.W_OK);
  } catch (error) {
    throw fsError(`write ${flag}`, file, error, "bad-output-path");
  }
}
