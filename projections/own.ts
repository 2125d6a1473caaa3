/**
 * A record's own value for a key, never an inherited one: keys come from producers,
 * and `record['__proto__']` would otherwise read `Object.prototype`.
 */
export function own<V>(record: Readonly<Record<string, V>>, key: string): V | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}
