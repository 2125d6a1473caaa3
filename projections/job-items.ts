import type { FailureError } from '../schema/events.ts';
import { isCustomEvent } from '../schema/recorded-event.ts';
import type { RecordedEvent } from '../schema/recorded-event.ts';
import { draftedFold } from './drafted-fold.ts';
import { emptyItemTable, getItem, itemEntries } from './item-table.ts';
import type { ItemTable } from './item-table.ts';
import type { Projection } from './projection.ts';

/** Where an item stands. */
export type ItemStatus = 'pending' | 'inFlight' | 'completed' | 'failed' | 'skipped';

/** What the ledger knows of one item. */
export interface ItemRecord {
  status: ItemStatus;
  /** Times the item was started. */
  attempts: number;
  type: string | null;
  group: string | null;
  worker: string | null;
  /** When the current or last attempt started (epoch ms). */
  startedAt: number | null;
  leaseMs: number | null;
  durationMs: number | null;
  lastError: FailureError | null;
}

/** Every item of one job. */
export interface JobItemsState {
  /** The last stream version applied; redelivered events at or below it are ignored. */
  version: number;
  items: ItemTable<ItemRecord>;
}

/** The record of an item nothing has happened to yet. */
export const blankItemRecord: ItemRecord = {
  status: 'pending',
  attempts: 0,
  type: null,
  group: null,
  worker: null,
  startedAt: null,
  leaseMs: null,
  durationMs: null,
  lastError: null,
};

/**
 * The status an event of `type` moves an item to, or undefined when it leaves the item as
 * it is: the item state machine, shared by every projection that tracks items.
 */
export function itemStatusAfter(
  type: RecordedEvent['type'],
  current: ItemStatus | undefined,
): ItemStatus | undefined {
  switch (type) {
    case 'items.planned':
      return current === undefined ? 'pending' : undefined;
    case 'items.released':
      // A released item goes back to pending; its next start counts as a retry.
      return current === 'inFlight' || current === 'failed' ? 'pending' : undefined;
    case 'item.started':
      return 'inFlight';
    case 'item.completed':
      return 'completed';
    case 'item.failed':
      return 'failed';
    case 'item.skipped':
      return 'skipped';
    default:
      return undefined;
  }
}

/** The ids of the items an event names; empty for events about the job as a whole. */
export function eventItemIds(event: RecordedEvent): string[] {
  if (isCustomEvent(event)) return [];
  switch (event.type) {
    case 'items.planned':
      return event.data.items.map((item) => item.id);
    case 'items.released':
      return event.data.itemIds;
    case 'item.started':
    case 'item.completed':
    case 'item.failed':
    case 'item.skipped':
      return [event.data.itemId];
    case 'job.started':
    case 'job.scope_changed':
    case 'stage.started':
    case 'progress.reported':
    case 'checkpoint.saved':
    case 'log.written':
    case 'job.paused':
    case 'job.resumed':
    case 'job.completed':
    case 'job.failed':
    case 'job.cancelled':
      return [];
  }
}

/**
 * The item changes one event makes, as new records by item id; empty for events that
 * do not touch items. Shared by the projections that track items.
 */
export function itemUpdates(
  lookup: (itemId: string) => ItemRecord | undefined,
  event: RecordedEvent,
): Map<string, ItemRecord> {
  const updates = new Map<string, ItemRecord>();
  if (isCustomEvent(event)) return updates;
  const current = (itemId: string) => updates.get(itemId) ?? lookup(itemId) ?? blankItemRecord;
  const at = event.occurredAt.getTime();
  switch (event.type) {
    case 'items.planned':
      for (const item of event.data.items) {
        const known = updates.get(item.id) ?? lookup(item.id);
        if (itemStatusAfter(event.type, known?.status) === undefined) continue;
        updates.set(item.id, {
          ...blankItemRecord,
          type: item.type ?? null,
          group: item.group ?? null,
        });
      }
      return updates;
    case 'item.started': {
      const record = current(event.data.itemId);
      updates.set(event.data.itemId, {
        ...record,
        status: 'inFlight',
        attempts: Math.max(record.attempts + 1, event.data.attempt ?? 0),
        worker: event.data.worker ?? null,
        startedAt: at,
        leaseMs: event.data.leaseMs ?? null,
      });
      return updates;
    }
    case 'item.completed': {
      const record = current(event.data.itemId);
      updates.set(event.data.itemId, {
        ...record,
        status: 'completed',
        type: event.data.type ?? record.type,
        durationMs: event.data.durationMs ?? record.durationMs,
      });
      return updates;
    }
    case 'item.failed': {
      const record = current(event.data.itemId);
      updates.set(event.data.itemId, {
        ...record,
        status: 'failed',
        type: event.data.type ?? record.type,
        durationMs: event.data.durationMs ?? record.durationMs,
        lastError: event.data.error,
      });
      return updates;
    }
    case 'item.skipped': {
      const record = current(event.data.itemId);
      updates.set(event.data.itemId, {
        ...record,
        status: 'skipped',
        type: event.data.type ?? record.type,
      });
      return updates;
    }
    case 'items.released':
      for (const itemId of event.data.itemIds) {
        const record = current(itemId);
        if (itemStatusAfter(event.type, record.status) === 'pending') {
          updates.set(itemId, { ...record, status: 'pending', worker: null, startedAt: null });
        }
      }
      return updates;
    case 'job.started':
    case 'job.scope_changed':
    case 'stage.started':
    case 'progress.reported':
    case 'checkpoint.saved':
    case 'log.written':
    case 'job.paused':
    case 'job.resumed':
    case 'job.completed':
    case 'job.failed':
    case 'job.cancelled':
      return updates;
  }
}

/** Per-item status, attempts and last error of one job. */
export const jobItems: Projection<JobItemsState> = {
  name: 'job-items',
  version: 1,
  initial: () => ({ version: 0, items: emptyItemTable() }),
  // Bulk folds write items through one writer, copying each touched bucket once, not per event.
  ...draftedFold<JobItemsState, ItemRecord>({
    draftOf: (state) => ({ ...state }),
    apply(_draft, items, event) {
      for (const [itemId, record] of itemUpdates((id) => items.get(id), event)) {
        items.set(itemId, record);
      }
    },
  }),
};

/** An item record with its id. */
export type ItemEntry = ItemRecord & { itemId: string };

/** Every item with its record. */
export function allItems(state: JobItemsState): ItemEntry[] {
  return [...itemEntries(state.items)].map(([itemId, record]) => ({ itemId, ...record }));
}

/** Items planned or released and not started since. */
export function pendingItems(state: JobItemsState): ItemEntry[] {
  return allItems(state).filter((item) => item.status === 'pending');
}

/** Items started and not finished. */
export function inFlightItems(state: JobItemsState): ItemEntry[] {
  return allItems(state).filter((item) => item.status === 'inFlight');
}

/** Items in flight for longer than their lease (or `defaultLeaseMs`) as of `now`. */
export function stuckItems(state: JobItemsState, now: number, defaultLeaseMs: number): ItemEntry[] {
  return inFlightItems(state).filter(
    (item) => item.startedAt !== null && now - item.startedAt > (item.leaseMs ?? defaultLeaseMs),
  );
}

/** The item's record, if the job knows it. */
export function itemRecord(state: JobItemsState, itemId: string): ItemRecord | undefined {
  return getItem(state.items, itemId);
}

/** True when the item has completed or was skipped: there is nothing left to do for it. */
export function isItemDone(state: JobItemsState, itemId: string): boolean {
  const status = getItem(state.items, itemId)?.status;
  return status === 'completed' || status === 'skipped';
}
