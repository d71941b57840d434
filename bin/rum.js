#!/usr/bin/env -S node --max-semi-space-size=16
// --max-semi-space-size: V8 sizes the young generation from the machine's memory, which nearly
// doubles an idle node's resident memory for no measurable throughput (bench/net-idle-rss).
// `npm start` and the Docker image pass the same flag.
// The `rum` command. The sources are TypeScript run by Node's type stripping (Node >= 22.18).
import { enableCompileCache } from 'node:module';

// Cache compiled code between runs (a faster start); NODE_DISABLE_COMPILE_CACHE=1 turns it off.
enableCompileCache?.();
await import('../src/cli/main.ts');
