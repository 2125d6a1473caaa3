/** The HTTP API: `createServer` and the tokens that guard it. */
export { checkAccess, parseTokens } from './auth.ts';
export type { AccessCheck, Scope, TokenTable } from './auth.ts';
export { createServer } from './server.ts';
export type { ServerOptions } from './server.ts';
