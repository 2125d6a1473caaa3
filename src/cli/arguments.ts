import { logCursorPattern } from '../cursors.ts';
import { InvalidArgumentError } from 'commander';

/** Parses a whole number >= 1 for an option, with a clear error otherwise. */
export function parsePositiveInt(value: string): number {
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 1) {
    throw new InvalidArgumentError(`expected a whole number >= 1, received '${value}'`);
  }
  return parsed;
}

/** Parses a date or date-time for an option, with a clear error otherwise. */
export function parseTimestamp(value: string): string {
  const parsed = new Date(value);
  if (Number.isNaN(parsed.getTime())) {
    throw new InvalidArgumentError(
      `expected a date such as 2026-11-22 or 2026-11-22T10:00:00Z, received '${value}'`,
    );
  }
  return parsed.toISOString();
}

/** Collects a repeatable option into a list. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Parses a whole number >= 0 for an option, with a clear error otherwise. */
export function parseNonNegativeInt(value: string): number {
  const parsed = Number(value);
  if (value.trim() === '' || !Number.isSafeInteger(parsed) || parsed < 0) {
    throw new InvalidArgumentError(`expected a whole number >= 0, received '${value}'`);
  }
  return parsed;
}

/** Parses a TCP port, 0 to 65535 (0: any free one), with a clear error otherwise. */
export function parsePort(value: string): number {
  const parsed = Number(value);
  if (value.trim() === '' || !Number.isSafeInteger(parsed) || parsed < 0 || parsed > 65_535) {
    throw new InvalidArgumentError(
      `expected a port number from 0 to 65535 (0: any free one), received '${value}'`,
    );
  }
  return parsed;
}

/** Parses a log cursor `<transactionId>:<position>` for an option. */
export function parseCursorOption(value: string): string {
  if (!logCursorPattern.test(value.trim())) {
    throw new InvalidArgumentError(
      `expected a cursor "<transactionId>:<position>" such as "812:1044", received '${value}'`,
    );
  }
  return value.trim();
}
