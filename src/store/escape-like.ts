/**
 * Text that LIKE and ILIKE match literally (their default escape is the backslash).
 *
 * @example
 * sql`name ilike ${`%${escapeLike('50%_off')}%`}`;
 */
export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}
