#!/usr/bin/env node
// The `rum` command. The sources are TypeScript run by Node's type stripping (Node >= 22.18).
import { enableCompileCache } from 'node:module';

// Cache compiled code between runs (a faster start); NODE_DISABLE_COMPILE_CACHE=1 turns it off.
enableCompileCache?.();
await import('../src/cli/main.ts');
