import type { Command } from "commander";
import { openBrowser } from "../openBrowser.js";
import { serveCommand } from "./serve.js";

/**
 * `tiller playground`: `tiller serve` (same options) plus the browser opened on its page, which
 * shows how alignment steered a generation (search tree, rewards, provenance, comparisons).
 */
export function registerPlayground(program: Command): void {
  serveCommand(
    program,
    "playground",
    "tiller serve, then open its playground page in the browser (see docs/playground.md)",
    async (url, options) => {
      const page = `${url}/`;
      process.stderr.write(`tiller: playground at ${page}\n`);
      if (options.open === false) return;
      if (!(await openBrowser(page)))
        process.stderr.write("tiller: could not open a browser; open the address above yourself\n");
    },
  ).option("--no-open", "do not open a browser (headless machines); just print the address");
}
