import * as z from 'zod';
import { limits } from '../../schema/limits.ts';
import { defaultConditionSettings } from '../../projections/job-conditions.ts';
import type { ConditionSettings } from '../../projections/job-conditions.ts';
import { parseInput } from '../validation.ts';

const millis = z.number().int().positive().max(limits.stallAfterMs);

/** What `conditions` (on `openLedger`, or from `serve`'s flags) may set. */
export const conditionSettingsSchema = z.strictObject({
  defaultStallAfterMs: millis.optional(),
  learnedGapMultiple: z.number().finite().min(1).max(1_000).optional(),
  stallFloorMs: millis.optional(),
  gapsToLearn: z.number().int().min(1).max(10_000).optional(),
  defaultFailureRateAbove: z.number().min(0).max(1).nullable().optional(),
  failureRateMinOutcomes: z.number().int().min(1).max(1_000_000).optional(),
});

/**
 * The settings of conditions: the defaults with `given` over them; throws
 * `InvalidInputError` naming each bad field under `path`.
 *
 * @example
 * conditionSettings({ defaultStallAfterMs: 120_000 }).stallFloorMs; // 60_000
 */
export function conditionSettings(given: unknown = {}, path = 'conditions'): ConditionSettings {
  const parsed = parseInput(conditionSettingsSchema, given ?? {}, path);
  const settings = { ...defaultConditionSettings };
  for (const [key, value] of Object.entries(parsed)) {
    if (value !== undefined) Object.assign(settings, { [key]: value });
  }
  return settings;
}
