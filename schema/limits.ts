/** Size bounds for everything the ledger accepts. Every string, array and map has one. */
export const limits = {
  /** Job ids, item ids, stream ids, event ids. */
  idLength: 200,
  /** Names: job name, kind, project, stage, type, worker, category, code. */
  nameLength: 200,
  /** Free text: messages, reasons, notes. */
  textLength: 4_000,
  /** One stack frame line. */
  stackFrameLength: 500,
  /** Stack frames kept on a failure. */
  stackFrames: 5,
  /** Items in one `items.planned` or `items.released` event (the byte cap may bind first). */
  itemsPerEvent: 2_000,
  /** Stages declared by `job.started`. */
  stages: 100,
  /** The longest stall threshold a job may set: 30 days, in ms. */
  stallAfterMs: 30 * 24 * 60 * 60 * 1_000,
  /** Entries in a map (labels, metrics, counts). */
  mapEntries: 100,
  /** Nesting of arrays and objects in a free JSON field (config, output, cursor, …). */
  jsonDepth: 100,
  /** Serialized JSON of one event's data plus metadata, in bytes. */
  eventBytes: 64 * 1024,
  /** Events in one append call. */
  eventsPerAppend: 10_000,
  /** Streams in one `appendMany` call. */
  streamsPerAppend: 1_000,
  /** The highest `schemaVersion` an event may name. */
  schemaVersion: 1_000,
  /** Rows in one read page. */
  readPage: 10_000,
  /** Times (occurredAt, timeline bounds) from 0001-01-01, which PostgreSQL can store, in ms. */
  earliestTimeMs: Date.parse('0001-01-01T00:00:00.000Z'),
  /** …to 9999-12-31, in ms. */
  latestTimeMs: Date.parse('9999-12-31T23:59:59.999Z'),
} as const;
