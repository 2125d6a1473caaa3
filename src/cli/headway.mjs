#!/usr/bin/env node
// The `headway` command. TypeScript runs through tsx, so the bin works right after
// `npm install` with no build step.
import { register } from 'tsx/esm/api';

register();
let finished = false;
process.on('exit', (code) => {
  // A command whose work never settled must not look like a success.
  if (!finished && code === 0) {
    process.stderr.write('headway: stopped before the command finished\n');
    process.exitCode = 1;
  }
});
const { main } = await import('./main.ts');
process.exitCode = await main(process.argv);
finished = true;
