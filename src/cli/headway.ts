#!/usr/bin/env node
// The `headway` command: compiled to `dist/src/cli/headway.js`, the package's bin.
import { main } from './main.ts';

let finished = false;
process.on('exit', (code) => {
  // A command whose work never settled must not look like a success.
  if (!finished && code === 0) {
    process.stderr.write('headway: stopped before the command finished\n');
    process.exitCode = 1;
  }
});
process.exitCode = await main(process.argv);
finished = true;
