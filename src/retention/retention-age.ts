import { InvalidInputError } from '../errors.ts';
import { expectedIssue } from '../validation.ts';

const unitMs = { w: 7 * 86_400_000, d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000 } as const;
const durationText = /^(\d+)\s*(w|d|h|m|s)$/;

/**
 * A retention age in milliseconds: `'90d'`, `'12h'`, `'30m'`, `'45s'`, `'2w'`, or a positive
 * whole number of milliseconds. Anything else is an `InvalidInputError` at `path`.
 *
 * @example
 * parseRetentionAge('90d'); // 7_776_000_000
 */
export function parseRetentionAge(value: unknown, path = 'olderThan'): number {
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value) && value > 0) return value;
  } else if (typeof value === 'string') {
    const match = durationText.exec(value.trim());
    if (match) {
      const ms = Number(match[1]) * unitMs[match[2] as keyof typeof unitMs];
      if (Number.isSafeInteger(ms) && ms > 0) return ms;
    }
  }
  throw new InvalidInputError([
    expectedIssue(
      path,
      'an age such as 90d, 12h, 30m, 45s or 2w, or a positive whole number of milliseconds',
      value,
    ),
  ]);
}
