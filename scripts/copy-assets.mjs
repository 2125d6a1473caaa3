// The part of `npm run build` that tsc does not do: the files the compiled code reads at run
// time (the dashboard and the SQL migrations) go beside it in dist/, in the same layout.
import { cpSync } from 'node:fs';

const assets = [
  ['src/dashboard', 'dist/src/dashboard'],
  ['schema/migrations', 'dist/schema/migrations'],
];
for (const [from, to] of assets) cpSync(from, to, { recursive: true });
