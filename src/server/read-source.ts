import type { preHandlerAsyncHookHandler } from 'fastify';
import { logCursorText } from '../cursors.ts';
import type { Ledger, LedgerReads } from '../ledger.ts';
import { parseInput } from '../validation.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Where this request's reads come from: the ledger (its replica, if any) or its primary. */
    reads: LedgerReads;
  }
}

/**
 * The request header that asks for read-your-writes: a log cursor, as an append answers
 * with (`cursor`). The read is answered once the replica has replayed it, or from the
 * primary after a bounded wait.
 */
export const readAfterHeader = 'headway-read-after';
/** The answer's header naming where it was read: `replica` or `primary`. */
export const readSourceHeader = 'headway-read-source';
/** The answer's header saying how long the replica was waited for, in milliseconds. */
export const readWaitedHeader = 'headway-read-waited-ms';

/**
 * The `preHandler` hook that picks where a read route reads: the replica, unless the request
 * carries `Headway-Read-After` and the replica has not replayed that far within
 * `waitMs`. Every read answer says which in `Headway-Read-Source`.
 */
export function readSourceHook(ledger: Ledger, waitMs: number): preHandlerAsyncHookHandler {
  const ownSource = ledger.hasReplica ? 'replica' : 'primary';
  return async (request, reply) => {
    request.reads = ledger;
    if (request.routeOptions.config.scope !== 'read') return;
    const header = request.headers[readAfterHeader];
    if (header === undefined) {
      reply.header(readSourceHeader, ownSource);
      return;
    }
    const cursor = parseInput(logCursorText, header, `headers.${readAfterHeader}`);
    const chosen = await ledger.readsAfter(cursor, { timeoutMs: waitMs });
    request.reads = chosen.reads;
    reply.header(readSourceHeader, chosen.source).header(readWaitedHeader, chosen.waitedMs);
  };
}
