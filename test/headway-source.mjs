// Runs the `headway` command from its TypeScript sources, so tests need no build; the
// package test runs the compiled bin.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/headway.ts');
