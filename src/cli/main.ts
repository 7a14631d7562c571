#!/usr/bin/env node
/*
 * Ctrl-C/SIGTERM handling comes first. An ES module runs only after its whole static import graph
 * has loaded (llama.cpp's bindings and vega take seconds on a busy machine), and a signal in that
 * window would kill tiller with the default action; so the handlers are installed here and the
 * program is imported after them.
 */
import { installInterruptHandlers } from "./signals.js";

installInterruptHandlers();
await import("./program.js");
