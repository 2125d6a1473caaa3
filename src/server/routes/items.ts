import { isDoneStatus } from '../../../projections/job-items.ts';
import type { z } from 'zod';
import { exportFailures, failureGroups, jobFailures } from '../../../projections/job-failures.ts';
import {
  allItems,
  inFlightItems,
  itemBreakdown,
  jobItems,
  pendingItems,
  stuckItems,
} from '../../../projections/job-items.ts';
import type { ItemEntry, JobItemsState } from '../../../projections/job-items.ts';
import type { App } from '../app.ts';
import { readScope } from '../hooks.ts';
import * as schemas from '../schemas.ts';
import { projectJob } from './common.ts';

/** A job's failures, its items (by status, or one), and its counts. */
export function itemRoutes(app: App): void {
  app.get(
    '/v1/jobs/:id/failures',
    {
      config: readScope,
      schema: {
        params: schemas.jobParams,
        querystring: schemas.failuresQuery,
        summary: "A job's failures, grouped",
      },
    },
    async (request) => {
      const jobId = request.params.id;
      const state = await projectJob(request.reads, jobId, jobFailures);
      if (request.query.format === 'export') {
        return exportFailures(state, jobId, new Date().toISOString());
      }
      return { jobId, groups: failureGroups(state) };
    },
  );

  app.get(
    '/v1/jobs/:id/items',
    {
      config: readScope,
      schema: {
        params: schemas.jobParams,
        querystring: schemas.itemsQuery,
        summary: "A job's items, by status",
      },
    },
    async (request) => {
      const jobId = request.params.id;
      const state = await projectJob(request.reads, jobId, jobItems);
      const { status, leaseMs = 0, limit = 1_000 } = request.query;
      const items = itemsWith(state, status, leaseMs);
      return { jobId, count: items.length, items: items.slice(0, limit) };
    },
  );

  app.get(
    '/v1/jobs/:id/items/:itemId',
    {
      config: readScope,
      schema: {
        params: schemas.itemParams,
        summary:
          'One item: status, processed, stage, attempts, type, group, worker, lease, duration, last error',
      },
    },
    async (request) => {
      const { id: jobId, itemId } = request.params;
      return { jobId, ...withLease(await request.reads.item(jobId, itemId)) };
    },
  );

  app.get(
    '/v1/jobs/:id/counts',
    {
      config: readScope,
      schema: {
        params: schemas.jobParams,
        summary: "A job's items by status: in all, by item group and by item type",
      },
    },
    async (request) => {
      const jobId = request.params.id;
      return { jobId, ...itemBreakdown(await projectJob(request.reads, jobId, jobItems)) };
    },
  );
}

/** One item as its route sends it: whether it is processed, and when its lease ends. */
function withLease(item: ItemEntry) {
  return {
    ...item,
    // "Is it processed?" in one call, as `ledger.isProcessed` answers it.
    processed: isDoneStatus(item.status),
    leaseExpiresAt:
      item.status === 'inFlight' && item.startedAt !== null && item.leaseMs !== null
        ? item.startedAt + item.leaseMs
        : null,
  };
}

type ItemsQuery = z.output<typeof schemas.itemsQuery>;

/** The items a `status` filter of `GET /v1/jobs/:id/items` asks for, in plan order. */
function itemsWith(state: JobItemsState, status: ItemsQuery['status'], leaseMs: number) {
  switch (status) {
    case 'pending':
      return pendingItems(state);
    case 'in_flight':
      return inFlightItems(state);
    case 'stuck':
      return stuckItems(state, Date.now(), leaseMs);
    case 'failed':
      return allItems(state).filter((item) => item.status === 'failed');
    default:
      return allItems(state);
  }
}
