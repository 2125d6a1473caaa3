import type { FailureError } from '../schema/events.ts';
import { isCustomEvent } from '../schema/recorded-event.ts';
import type { RecordedEvent } from '../schema/recorded-event.ts';
import { draftedFold } from './drafted-fold.ts';
import { bucketOf, emptyItemTable, getItem, itemBucketCount, itemEntries } from './item-table.ts';
import type { ItemTable } from './item-table.ts';
import { setOwn } from './own.ts';
import type { Projection } from './projection.ts';

/** Items by status; planned = pending + inFlight + completed + failed + skipped. */
export interface ItemCounts {
  planned: number;
  pending: number;
  inFlight: number;
  completed: number;
  failed: number;
  skipped: number;
}

/** Where an item stands. */
export type ItemStatus = 'pending' | 'inFlight' | 'completed' | 'failed' | 'skipped';

/** What the ledger knows of one item. */
export interface ItemRecord {
  status: ItemStatus;
  /** Times the item was started. */
  attempts: number;
  type: string | null;
  group: string | null;
  /**
   * The stage of the item's latest event: the event's own `stage`, else a failure's
   * `error.stage`, else the job's stage then (the last `stage.started`).
   */
  stage: string | null;
  worker: string | null;
  /** When the current or last attempt started (epoch ms). */
  startedAt: number | null;
  leaseMs: number | null;
  durationMs: number | null;
  lastError: FailureError | null;
  /** Place in plan order, from 0 (the first `items.planned` to name it); null if never planned. */
  planIndex: number | null;
  /** Place among the job's items by first appearance in its events, from 0. */
  seenIndex: number;
}

/** Every item of one job. */
export interface JobItemsState {
  /** The last stream version applied; redelivered events at or below it are ignored. */
  version: number;
  /** The job's current stage: the last `stage.started`. */
  stage: string | null;
  /** Items planned so far: the next `planIndex`. */
  planned: number;
  /** Items known so far: the next `seenIndex`. */
  seen: number;
  items: ItemTable<ItemRecord>;
  /**
   * The ids of the items pending or in flight, so that listing them walks the open items
   * only, not every item of the job (half a million in a job of a million events).
   */
  open: ItemTable<true>;
}

/**
 * What `itemUpdates` reads and advances besides the items: the current stage and the
 * counters that give new items their places. A `JobItemsState` is one.
 */
export type ItemPlaces = Pick<JobItemsState, 'stage' | 'planned' | 'seen'>;

/** The record of an item nothing has happened to yet. */
export const blankItemRecord: ItemRecord = {
  status: 'pending',
  attempts: 0,
  type: null,
  group: null,
  stage: null,
  worker: null,
  startedAt: null,
  leaseMs: null,
  durationMs: null,
  lastError: null,
  planIndex: null,
  seenIndex: 0,
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
    case 'condition.raised':
    case 'condition.cleared':
      return [];
  }
}

/**
 * The item changes one event makes, as new records by item id; empty for events that
 * do not touch items. Items seen for the first time take their places from `places`,
 * whose counters this advances; `stage.started` moves `places.stage`.
 *
 * @example
 * const places = { stage: null, planned: 0, seen: 0 };
 * for (const [itemId, record] of itemUpdates((id) => table.get(id), event, places)) table.set(itemId, record);
 */
export function itemUpdates(
  lookup: (itemId: string) => ItemRecord | undefined,
  event: RecordedEvent,
  places: ItemPlaces,
): Map<string, ItemRecord> {
  const updates = new Map<string, ItemRecord>();
  if (isCustomEvent(event)) return updates;
  const known = (itemId: string) => updates.get(itemId) ?? lookup(itemId);
  const current = (itemId: string) =>
    known(itemId) ?? { ...blankItemRecord, seenIndex: places.seen++ };
  // The stage an item event belongs to: its own, a failure's, else the job's now.
  const stageOf = (data: { stage?: string | undefined; error?: FailureError }) =>
    data.stage ?? data.error?.stage ?? places.stage;
  const at = event.occurredAt.getTime();
  switch (event.type) {
    case 'items.planned':
      for (const item of event.data.items) {
        const record = known(item.id);
        if (itemStatusAfter(event.type, record?.status) !== undefined) {
          updates.set(item.id, {
            ...blankItemRecord,
            type: item.type ?? null,
            group: item.group ?? null,
            stage: places.stage,
            planIndex: places.planned++,
            seenIndex: places.seen++,
          });
        } else if (record && record.planIndex === null) {
          // Planned after it turned up: it takes a place in the plan (and the type and group
          // it lacked); its status and stage stay.
          updates.set(item.id, {
            ...record,
            type: record.type ?? item.type ?? null,
            group: record.group ?? item.group ?? null,
            planIndex: places.planned++,
          });
        }
      }
      return updates;
    case 'item.started': {
      const record = current(event.data.itemId);
      updates.set(event.data.itemId, {
        ...record,
        status: 'inFlight',
        stage: stageOf(event.data),
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
        stage: stageOf(event.data),
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
        stage: stageOf(event.data),
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
        stage: stageOf(event.data),
        type: event.data.type ?? record.type,
      });
      return updates;
    }
    case 'items.released':
      for (const itemId of event.data.itemIds) {
        const record = known(itemId);
        // Back to pending in its old place: a release never reorders the plan.
        if (record && itemStatusAfter(event.type, record.status) === 'pending') {
          updates.set(itemId, {
            ...record,
            status: 'pending',
            stage: places.stage,
            worker: null,
            startedAt: null,
          });
        }
      }
      return updates;
    case 'stage.started':
      places.stage = event.data.stage;
      return updates;
    case 'job.started':
    case 'job.scope_changed':
    case 'progress.reported':
    case 'checkpoint.saved':
    case 'log.written':
    case 'job.paused':
    case 'job.resumed':
    case 'job.completed':
    case 'job.failed':
    case 'job.cancelled':
    case 'condition.raised':
    case 'condition.cleared':
      return updates;
  }
}

/** Per-item status, stage, attempts, place in plan order and last error of one job. */
export const jobItems: Projection<JobItemsState> = {
  name: 'job-items',
  // 2: records carry their stage and their places in plan order. 3: the open items apart.
  version: 3,
  initial: () => ({
    version: 0,
    stage: null,
    planned: 0,
    seen: 0,
    items: emptyItemTable(),
    open: emptyItemTable(),
  }),
  // Bulk folds write items through one writer, copying each touched bucket once, not per event.
  ...draftedFold<JobItemsState, ItemRecord>({
    draftOf: (state) => ({ ...state }),
    apply(draft, items, event) {
      for (const [itemId, record] of itemUpdates((id) => items.get(id), event, draft)) {
        const wasOpen = isOpenStatus(items.get(itemId)?.status);
        items.set(itemId, record);
        const isOpen = isOpenStatus(record.status);
        if (wasOpen !== isOpen) setOpen(draft, itemId, isOpen);
      }
    },
    // A state handed out shares the open buckets: the draft copies them again before a change.
    settle: (draft) => void ownedOpenBuckets.delete(draft),
  }),
};

function isOpenStatus(status: ItemStatus | undefined): boolean {
  return status === 'pending' || status === 'inFlight';
}

/**
 * The open buckets a draft has copied and may change in place, until it hands a state out
 * (`settle`): a bulk fold copies each bucket once, not once per event.
 */
const ownedOpenBuckets = new WeakMap<JobItemsState, boolean[]>();

function setOpen(draft: JobItemsState, itemId: string, open: boolean): void {
  let owned = ownedOpenBuckets.get(draft);
  if (!owned) {
    owned = new Array<boolean>(itemBucketCount).fill(false);
    ownedOpenBuckets.set(draft, owned);
    draft.open = draft.open.slice();
  }
  const index = bucketOf(itemId);
  if (!owned[index]) {
    draft.open[index] = { ...draft.open[index] };
    owned[index] = true;
  }
  const bucket = draft.open[index]!;
  // setOwn and delete: an item id may be "__proto__".
  if (open) setOwn(bucket, itemId, true);
  else delete bucket[itemId];
}

/** An item record with its id. */
export type ItemEntry = ItemRecord & { itemId: string };

/**
 * Plan order: planned items by their place in the plan, then the items that were never
 * planned by first appearance.
 */
export function comparePlanOrder(a: ItemRecord, b: ItemRecord): number {
  if (a.planIndex !== b.planIndex) {
    if (a.planIndex === null) return 1;
    if (b.planIndex === null) return -1;
    return a.planIndex - b.planIndex;
  }
  return a.seenIndex - b.seenIndex;
}

/** The open items of one status, in plan order: as many steps as open items. */
function openItemsWith(state: JobItemsState, status: 'pending' | 'inFlight'): ItemEntry[] {
  const entries: ItemEntry[] = [];
  for (const [itemId] of itemEntries(state.open)) {
    const record = getItem(state.items, itemId)!;
    if (record.status === status) entries.push({ itemId, ...record });
  }
  return entries.sort(comparePlanOrder);
}

/** Every item with its record, in plan order. */
export function allItems(state: JobItemsState): ItemEntry[] {
  const entries: ItemEntry[] = [];
  for (const [itemId, record] of itemEntries(state.items)) entries.push({ itemId, ...record });
  return entries.sort(comparePlanOrder);
}

/**
 * Items planned or released and not started since, in plan order: the first planning of
 * an item gives its place, and a released item keeps it.
 */
export function pendingItems(state: JobItemsState): ItemEntry[] {
  return openItemsWith(state, 'pending');
}

/** Items started and not finished, in plan order. */
export function inFlightItems(state: JobItemsState): ItemEntry[] {
  return openItemsWith(state, 'inFlight');
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

/** True for an item that completed or was skipped: there is nothing left to do for it. */
export function isDoneStatus(status: ItemStatus | undefined): boolean {
  return status === 'completed' || status === 'skipped';
}

/** True when the item has completed or was skipped: there is nothing left to do for it. */
export function isItemDone(state: JobItemsState, itemId: string): boolean {
  return isDoneStatus(getItem(state.items, itemId)?.status);
}

/** One group's or one type's items by status, as the job's own counts are kept. */
export type GroupCounts<K extends string> = ItemCounts & Record<K, string | null>;

/** A job's items counted by status: in all, by item group, by item type. */
export interface ItemBreakdown {
  counts: ItemCounts;
  /** By the `group` of `items.planned`; items without one under null, last. */
  groups: GroupCounts<'group'>[];
  /** By item type (the planned one, or the one an outcome named); untyped items under null, last. */
  types: GroupCounts<'type'>[];
}

const noItems = (): ItemCounts => ({
  planned: 0,
  pending: 0,
  inFlight: 0,
  completed: 0,
  failed: 0,
  skipped: 0,
});

/**
 * Items by status in all, by group (a split, a shard) and by type; each list sums to
 * `counts`, which equal the job's own counts.
 *
 * @example
 * const { groups } = itemBreakdown(fold(jobItems, events));
 * // [{ group: 'train', planned: 8, pending: 3, inFlight: 1, completed: 4, failed: 0, skipped: 0 }, …]
 */
export function itemBreakdown(state: JobItemsState): ItemBreakdown {
  const counts = noItems();
  // Maps, not objects: a group may be named "__proto__".
  const groups = new Map<string | null, ItemCounts>();
  const types = new Map<string | null, ItemCounts>();
  const add = (into: Map<string | null, ItemCounts>, key: string | null, status: ItemStatus) => {
    let entry = into.get(key);
    if (!entry) into.set(key, (entry = noItems()));
    entry.planned += 1;
    entry[status] += 1;
  };
  for (const [, record] of itemEntries(state.items)) {
    counts.planned += 1;
    counts[record.status] += 1;
    add(groups, record.group, record.status);
    add(types, record.type, record.status);
  }
  return {
    counts,
    groups: sortedByKey(groups).map(([group, entry]) => ({ group, ...entry })),
    types: sortedByKey(types).map(([type, entry]) => ({ type, ...entry })),
  };
}

/** Entries by key in code-unit order (the same everywhere), null last. */
function sortedByKey<V>(map: Map<string | null, V>): [string | null, V][] {
  return [...map].sort(([a], [b]) =>
    a === b ? 0 : a === null ? 1 : b === null ? -1 : a < b ? -1 : 1,
  );
}
