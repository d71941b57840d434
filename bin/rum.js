#!/usr/bin/env node
// The `rum` command. The sources are TypeScript run by Node's type stripping (Node >= 22.18).
import '../src/cli/main.ts';
