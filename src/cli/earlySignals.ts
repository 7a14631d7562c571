/**
 * Imported first by main.ts: ES modules evaluate their imports before their own body, and loading
 * the command modules (llama.cpp bindings, vega) takes a while, so the SIGINT/SIGTERM handlers are
 * installed here, before any of them, rather than in runMain.
 */
import { installInterruptHandlers } from "./signals.js";

installInterruptHandlers();
