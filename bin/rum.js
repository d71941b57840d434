#!/usr/bin/env -S node --max-semi-space-size=16
// --max-semi-space-size: V8 sizes the young generation from the machine's memory, which nearly
// doubles an idle node's resident memory for no measurable throughput (bench/net-idle-rss).
// `npm start` and the Docker image pass the same flag.
// The `rum` command. The sources are TypeScript run by Node's type stripping (Node >= 22.18).
// This launcher is plain JavaScript that older Node versions parse (no top-level await, no
// named import that they lack): on one of those it prints which version is needed and how to
// get it (scripts/check-node.cjs) before any TypeScript is loaded.
import * as nodeModule from 'node:module';

nodeModule
  .createRequire(import.meta.url)('../scripts/check-node.cjs')
  .checkNode();
// Cache compiled code between runs (a faster start); NODE_DISABLE_COMPILE_CACHE=1 turns it off.
if (typeof nodeModule.enableCompileCache === 'function') nodeModule.enableCompileCache();
import('../src/cli/main.ts');
