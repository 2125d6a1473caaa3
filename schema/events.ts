import * as z from 'zod';
import { limits } from './limits.ts';

const id = z.string().min(1).max(limits.idLength);
const name = z.string().min(1).max(limits.nameLength);
const text = z.string().max(limits.textLength);
const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const finite = z.number().finite();
const durationMs = z.number().finite().nonnegative();

/** A string-keyed map with at most `limits.mapEntries` entries. */
function boundedMap<T extends z.ZodType>(value: T) {
  return z
    .record(z.string().min(1).max(limits.nameLength), value)
    .refine((map) => Object.keys(map).length <= limits.mapEntries, {
      message: `Too big: expected at most ${limits.mapEntries} entries`,
    });
}

/** True when `value` nests arrays and objects at most `limit` deep; stops looking past it. */
function nestsWithin(value: unknown, limit: number): boolean {
  if (typeof value !== 'object' || value === null) return true;
  if (limit === 0) return false;
  for (const child of Array.isArray(value) ? value : Object.values(value)) {
    if (!nestsWithin(child, limit - 1)) return false;
  }
  return true;
}

/**
 * Any JSON value, nested at most `limits.jsonDepth` deep (deeper values would overflow the
 * stack of the recursive check). Its size is bounded by the per-event byte cap.
 */
export const jsonValue = z
  .unknown()
  .refine((value) => nestsWithin(value, limits.jsonDepth), {
    message: `Too deep: expected arrays and objects nested at most ${limits.jsonDepth} deep`,
    abort: true,
  })
  .pipe(z.json());
export type JsonValue = z.infer<typeof jsonValue>;

/** A UTF-16 surrogate without its other half: no UTF-8 text, so PostgreSQL cannot store it. */
const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * True for text PostgreSQL can store: without NUL characters and lone UTF-16 surrogates.
 *
 * @example
 * isStorableText('crawl-1'); // true
 * isStorableText('a\u0000b'); // false
 */
export function isStorableText(text: string): boolean {
  return !text.includes('\u0000') && !loneSurrogate.test(text);
}

/** The message of a refused `isStorableText`. */
export const unstorableTextMessage =
  'expected text without NUL characters (\\u0000) or lone UTF-16 surrogates, which PostgreSQL cannot store';

/** Text that reaches SQL: 1 to `max` characters that PostgreSQL can store and compare. */
export const storableText = (max: number) =>
  z.string().min(1).max(max).refine(isStorableText, unstorableTextMessage);

/** A stream (job) id, as every read and append takes it. */
export const streamIdSchema = storableText(limits.idLength);

/** Failure categories (docs/architecture.md, "Failure categories"); producers may use their own names too. */
export const defaultFailureCategories = [
  'network',
  'timeout',
  'extraction',
  'analysis',
  'output',
  'auth',
  'not_applicable',
  'unknown',
] as const;

/** The error of a failed item or job, with `json` for its free `details` field. */
function failureErrorWith<J extends z.ZodType<JsonValue>>(json: J) {
  return z.strictObject({
    message: text,
    category: name.optional(),
    code: name.optional(),
    retryable: z.boolean().optional(),
    stack: z.array(z.string().max(limits.stackFrameLength)).max(limits.stackFrames).optional(),
    stage: name.optional(),
    file: z.string().max(limits.textLength).optional(),
    /** Anything else the producer knows (a response body, an exit code); bounded by the event's byte cap. */
    details: json.optional(),
  });
}

export const failureError = failureErrorWith(jsonValue);
/** The error carried by `item.failed`. */
export type FailureError = z.infer<typeof failureError>;

const logLevel = z.enum(['debug', 'info', 'warn', 'error']);

/** The conditions the server records when it sees them raised or cleared (`condition.*`). */
export const conditionNames = ['stalled', 'at_risk', 'late', 'failure_rate'] as const;
/** One of `conditionNames`. */
export type ConditionName = (typeof conditionNames)[number];

const isoTime = z.iso.datetime({ offset: true });
const millis = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const fraction = z.number().min(0).max(1);

/**
 * The catalogue's data schemas, with `json` for its free JSON fields: built with `jsonValue`
 * below, and in src/append/event-checks.ts with a non-recursive stand-in that `z.compile` can
 * compile (recursive schemas it refuses). One definition keeps the two in step.
 */
export function dataSchemasWith<J extends z.ZodType<JsonValue>>(json: J) {
  return {
    'job.started': z.strictObject({
      name,
      kind: name,
      project: name,
      dataset: name.optional(),
      total: count.optional(),
      unit: name.optional(),
      stages: z
        .array(z.strictObject({ name, weight: z.number().finite().positive().max(1e6).optional() }))
        .max(limits.stages)
        .optional(),
      config: json.optional(),
      labels: boundedMap(z.string().max(limits.nameLength)).optional(),
      parentJobId: id.optional(),
      /** Stalled once no event has come for this long (ms); else learned or a default. */
      stallAfterMs: z.number().int().positive().max(limits.stallAfterMs).optional(),
      /** When the job must be finished by (ISO 8601): at risk, then late. */
      deadline: isoTime.optional(),
      /** A failure rate over the recent outcomes above this (0..1) is a condition. */
      failureRateAbove: fraction.optional(),
    }),
    'job.scope_changed': z.strictObject({ total: count }),
    'items.planned': z.strictObject({
      items: z
        .array(z.strictObject({ id, type: name.optional(), group: name.optional() }))
        .min(1)
        .max(limits.itemsPerEvent),
    }),
    'stage.started': z.strictObject({ stage: name, total: count.optional() }),
    'item.started': z.strictObject({
      itemId: id,
      stage: name.optional(),
      attempt: z.number().int().positive().max(1_000_000).optional(),
      worker: name.optional(),
      leaseMs: z
        .number()
        .int()
        .positive()
        .max(7 * 24 * 3600 * 1000)
        .optional(),
    }),
    'item.completed': z.strictObject({
      itemId: id,
      stage: name.optional(),
      type: name.optional(),
      durationMs: durationMs.optional(),
      output: json.optional(),
      metrics: boundedMap(finite).optional(),
    }),
    'item.failed': z.strictObject({
      itemId: id,
      stage: name.optional(),
      type: name.optional(),
      durationMs: durationMs.optional(),
      error: failureErrorWith(json),
    }),
    'item.skipped': z.strictObject({
      itemId: id,
      stage: name.optional(),
      type: name.optional(),
      reason: text.optional(),
    }),
    'items.released': z.strictObject({
      itemIds: z.array(id).min(1).max(limits.itemsPerEvent),
      reason: text,
    }),
    'progress.reported': z.strictObject({
      processed: count.optional(),
      total: count.optional(),
      percent: z.number().min(0).max(100).optional(),
      message: text.optional(),
      counts: boundedMap(z.number().int().min(-1e12).max(1e12)).optional(),
      current: z.string().max(limits.textLength).optional(),
    }),
    'checkpoint.saved': z.strictObject({ cursor: json, note: text.optional() }),
    'log.written': z.strictObject({ level: logLevel, message: text, context: json.optional() }),
    'job.paused': z.strictObject({ reason: text.optional() }),
    'job.resumed': z.strictObject({ reason: text.optional() }),
    'job.completed': z.strictObject({ result: json.optional() }),
    'job.failed': z.strictObject({ error: failureErrorWith(json) }),
    'job.cancelled': z.strictObject({ reason: text.optional() }),
    /**
     * The server saw a condition hold: recorded once, at the version it judged, and folded
     * into no count (docs/architecture.md, "Conditions").
     */
    'condition.raised': z.strictObject({
      condition: z.enum(conditionNames),
      /** Stalled: the threshold, where it came from, the last event and the silence. */
      thresholdMs: millis.optional(),
      basis: z.enum(['job', 'learned', 'default']).optional(),
      lastEventAt: isoTime.optional(),
      silentMs: millis.optional(),
      /** At risk and late: the deadline, the slow end of the ETA, how overdue. */
      deadline: isoTime.optional(),
      expectedBy: isoTime.optional(),
      overdueMs: millis.optional(),
      /** Failure rate: the recent rate, the threshold, and how many outcomes it covers. */
      rate: fraction.optional(),
      threshold: fraction.optional(),
      outcomes: count.optional(),
    }),
    /** The server saw a raised condition no longer hold (a stalled job's next event: recovered). */
    'condition.cleared': z.strictObject({
      condition: z.enum(conditionNames),
      /** How long it held, from its raising to this clearing. */
      heldMs: millis.optional(),
    }),
  } as const;
}

/** The data schema of every catalogued event type, version 1. */
export const eventDataSchemas = dataSchemasWith(jsonValue);

type Schemas = typeof eventDataSchemas;

/** Every catalogued event type. */
export type EventType = keyof Schemas;
/** The data of a catalogued event type. */
export type EventData<T extends EventType> = z.infer<Schemas[T]>;
/** A producer's own event type, kept in the timeline and ignored by reducers. */
export type CustomEventType = `x.${string}`;

/** Catalogued event types, in catalogue order. */
export const eventTypes = Object.keys(eventDataSchemas) as EventType[];

/** The current `schemaVersion` of each catalogued type; an older one is upcast on read. */
export const currentSchemaVersions: Record<EventType, number> = Object.fromEntries(
  eventTypes.map((type) => [type, 1]),
) as Record<EventType, number>;

/** Matches `x.<name>` custom event types. */
export const customEventType = /^x\.[A-Za-z0-9_][A-Za-z0-9_.:-]{0,99}$/;

/** True when `type` names a catalogued event type. */
export function isEventType(type: string): type is EventType {
  return Object.hasOwn(eventDataSchemas, type);
}

/** True when `type` is a producer's `x.<name>` custom type. */
export function isCustomEventType(type: string): type is CustomEventType {
  return customEventType.test(type);
}

/** Who and why: correlation and causation ids, the actor and the source of an event. */
export const eventMetadata = z.strictObject({
  correlationId: id.optional(),
  causationId: id.optional(),
  actor: name.optional(),
  source: name.optional(),
});
export type EventMetadata = z.infer<typeof eventMetadata>;

/** A catalogued event as a producer hands it to `append`: type and data. */
export type KnownEventInput = {
  [T in EventType]: { type: T; data: EventData<T> } & EventInputEnvelope;
}[EventType];

/** A custom `x.*` event as a producer hands it to `append`. */
export type CustomEventInput = { type: CustomEventType; data: JsonValue } & EventInputEnvelope;

/** Optional envelope fields a producer may set; the ledger fills in the rest. */
export interface EventInputEnvelope {
  /** The idempotency key; generated when absent. Reuse it on retry. */
  eventId?: string;
  /** The producer's clock; defaults to the time of the append call. */
  occurredAt?: Date | string;
  metadata?: EventMetadata;
  /** Defaults to the current version of the type. */
  schemaVersion?: number;
}

/** Anything `append` accepts. */
export type EventInput = KnownEventInput | CustomEventInput;
