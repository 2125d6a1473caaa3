#!/usr/bin/env node
// The `headway` command. TypeScript runs through tsx, so the bin works right after
// `npm install` with no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./main.ts');
process.exitCode = await main(process.argv);
