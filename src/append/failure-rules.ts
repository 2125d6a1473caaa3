import { readFile } from 'node:fs/promises';
import * as z from 'zod';
import type { ClassificationRule } from '../../projections/failure-classification.ts';
import { isStorableText } from '../../schema/events.ts';
import { limits } from '../../schema/limits.ts';
import { InvalidInputError } from '../errors.ts';
import { toValidationIssues } from '../validation.ts';

/** Bounds of a list of failure rules. */
export const failureRuleLimits = {
  /**
   * Rules in one list. The classifier keeps at most 1,000 compiled patterns, defaults
   * included; a list past that would recompile them on every failure.
   */
  rules: 500,
  /** Characters of one `messagePattern`. */
  patternLength: 1_000,
} as const;

/** A received value, briefly: strings quoted (long ones cut), numbers as they are. */
function received(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) {
    const text = JSON.stringify(value);
    return text.length <= 60 ? text : `an array of ${value.length}`;
  }
  if (typeof value === 'string') {
    return value.length <= 60
      ? JSON.stringify(value)
      : `${JSON.stringify(`${value.slice(0, 40)}…`)} (${value.length} characters)`;
  }
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return typeof value === 'object' ? 'an object' : typeof value;
}

/** A zod error option that says what was expected and what was received. */
function expected(what: string) {
  return {
    error: (issue: { input?: unknown }) => `expected ${what}, received ${received(issue.input)}`,
  };
}

const matchFields = ['code', 'name', 'messagePattern', 'status', 'statusRange'] as const;

const nameText = `a name of 1 to ${limits.nameLength} characters`;
const name = z
  .string(expected(nameText))
  .min(1, expected(nameText))
  .max(limits.nameLength, expected(nameText))
  .refine(isStorableText, expected(`${nameText} without NUL or lone surrogates`));

const statusText = 'an HTTP status, a whole number from 100 to 599';
const status = z
  .number(expected(statusText))
  .int(expected(statusText))
  .min(100, expected(statusText))
  .max(599, expected(statusText));

/** Why a pattern does not compile as the classifier compiles it, or undefined. */
function patternError(source: string): string | undefined {
  try {
    new RegExp(source, 'i');
    return undefined;
  } catch (error) {
    // "Invalid regular expression: /([/i: Unterminated character class" → the last part.
    const message = error instanceof Error ? error.message : String(error);
    return message.slice(message.lastIndexOf(': ') + 2).toLowerCase();
  }
}

const patternText = `a regular expression of 1 to ${failureRuleLimits.patternLength} characters`;
const messagePattern = z
  .string(expected(patternText))
  .min(1, expected(patternText))
  .max(failureRuleLimits.patternLength, { ...expected(patternText), abort: true })
  .superRefine((source, context) => {
    const reason = patternError(source);
    if (reason !== undefined) {
      context.addIssue({
        code: 'custom',
        message: `expected a valid regular expression, received ${received(source)} (${reason})`,
      });
    }
  });

const rangeText = 'an inclusive range [low, high] of HTTP statuses, such as [500, 599]';
const statusRange = z
  .tuple([status, status], expected(rangeText))
  .refine(([low, high]) => low <= high, expected(`${rangeText}, low <= high`));

const matchText = `an object with at least one of ${matchFields.join(', ')}`;
const match = z
  .strictObject(
    {
      code: name.optional(),
      name: name.optional(),
      messagePattern: messagePattern.optional(),
      status: status.optional(),
      statusRange: statusRange.optional(),
    },
    {
      error: (issue) =>
        issue.code === 'unrecognized_keys'
          ? `expected only ${matchFields.join(', ')}, received ${issue.keys.map((key) => JSON.stringify(key)).join(', ')}`
          : `expected ${matchText}, received ${received(issue.input)}`,
    },
  )
  .refine((fields) => matchFields.some((field) => fields[field] !== undefined), {
    message: `expected at least one of ${matchFields.join(', ')}, received none of them`,
  });

const ruleText = 'a rule { match, category, retryable? }';
const rule = z.strictObject(
  {
    match,
    category: name,
    retryable: z.boolean(expected('true or false')).optional(),
  },
  {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `expected only match, category, retryable, received ${issue.keys.map((key) => JSON.stringify(key)).join(', ')}`
        : `expected ${ruleText}, received ${received(issue.input)}`,
  },
);

const rulesText = `an array of at most ${failureRuleLimits.rules} rules`;

/** The schema of a failure rules list, as `--failure-rules` files and `openLedger` take it. */
export const failureRulesSchema = z.array(rule, expected(rulesText)).max(failureRuleLimits.rules, {
  error: (issue) =>
    `expected ${rulesText}, received ${Array.isArray(issue.input) ? issue.input.length : '?'} rules`,
});

/**
 * Checks a list of failure rules and returns them, without fields left undefined. Throws an
 * `InvalidInputError` naming the rule index and field, what was expected and what was received.
 *
 * @example
 * parseFailureRules([{ match: { messagePattern: 'quota exceeded' }, category: 'quota', retryable: true }]);
 * parseFailureRules([{ match: { messagePattern: '([' }, category: 'x' }]);
 * // throws: rules[0].match.messagePattern: expected a valid regular expression, received "([" (…)
 */
export function parseFailureRules(input: unknown, path = 'rules'): ClassificationRule[] {
  const parsed = failureRulesSchema.safeParse(input);
  if (!parsed.success) throw new InvalidInputError(toValidationIssues(parsed.error, path));
  return parsed.data.map(({ match: fields, category, retryable }) => ({
    match: Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined)),
    category,
    ...(retryable === undefined ? {} : { retryable }),
  }));
}

/**
 * Parses the JSON text of a failure rules file. `source` (the file's name) leads every
 * issue's path, so the error names the file and the rule.
 *
 * @example
 * loadFailureRules('[{"match": {"code": "EQUOTA"}, "category": "quota"}]', 'rules.json');
 */
export function loadFailureRules(text: string, source?: string): ClassificationRule[] {
  const path = source === undefined ? 'rules' : `${source}: rules`;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new InvalidInputError([
      {
        path: source ?? '(rules)',
        message: `expected JSON (an array of rules), received text that is not JSON (${error instanceof Error ? error.message : String(error)})`,
      },
    ]);
  }
  return parseFailureRules(json, path);
}

/** Reads and checks a failure rules file; errors name the file and the rule. */
export async function readFailureRules(file: string): Promise<ClassificationRule[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const reason = typeof code === 'string' ? code : String(error);
    throw new InvalidInputError([
      {
        path: file,
        message: `expected a readable JSON file of failure rules, received ${reason}`,
      },
    ]);
  }
  return loadFailureRules(text, file);
}
