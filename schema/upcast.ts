import { currentSchemaVersions, isEventType } from './events.ts';
import type { JsonValue } from './events.ts';

/**
 * Turns the data of one older `schemaVersion` of a type into the next version's data,
 * so old logs always replay.
 *
 * @example
 * const renameUrl: Upcaster = {
 *   type: 'item.completed', fromVersion: 1,
 *   upcast: (data) => ({ ...(data as object), output: (data as { url: string }).url }),
 * };
 */
export interface Upcaster {
  type: string;
  /** The version this upcaster reads; it produces `fromVersion + 1`. */
  fromVersion: number;
  upcast(data: JsonValue): JsonValue;
}

/** Upcasters indexed by type and version, built once per ledger. */
export type UpcasterIndex = ReadonlyMap<string, Upcaster>;

/** Indexes upcasters; two for the same type and version are a programming error. */
export function indexUpcasters(upcasters: readonly Upcaster[]): UpcasterIndex {
  const index = new Map<string, Upcaster>();
  for (const upcaster of upcasters) {
    const key = `${upcaster.type}@${upcaster.fromVersion}`;
    if (index.has(key)) throw new Error(`Two upcasters registered for ${key}`);
    index.set(key, upcaster);
  }
  return index;
}

/**
 * Applies upcasters until the data reaches the type's current version.
 * Returns the data and the version it reached.
 */
export function upcastData(
  index: UpcasterIndex,
  type: string,
  schemaVersion: number,
  data: JsonValue,
): { data: JsonValue; schemaVersion: number } {
  const target = isEventType(type) ? currentSchemaVersions[type] : schemaVersion;
  let version = schemaVersion;
  let current = data;
  while (version < target) {
    const upcaster = index.get(`${type}@${version}`);
    if (!upcaster) break;
    current = upcaster.upcast(current);
    version += 1;
  }
  return { data: current, schemaVersion: version };
}
