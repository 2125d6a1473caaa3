/**
 * A bounded, deterministic histogram of non-negative values (durations in ms): buckets
 * grow by 5%, so percentiles are within about 2.5% and memory stays a few hundred
 * numbers however many values arrive. The order of values does not matter.
 */
export interface Histogram {
  count: number;
  sum: number;
  min: number | null;
  max: number | null;
  /** Bucket index → count. */
  buckets: Record<string, number>;
}

const growth = Math.log(1.05);

/** An empty histogram. */
export function emptyHistogram(): Histogram {
  return { count: 0, sum: 0, min: null, max: null, buckets: {} };
}

function bucketIndex(value: number): number {
  return Math.floor(Math.log1p(value) / growth);
}

function bucketMidpoint(index: number): number {
  return (Math.expm1(index * growth) + Math.expm1((index + 1) * growth)) / 2;
}

/** A copy that `addValue` may change without touching the original. */
export function copyHistogram(histogram: Histogram): Histogram {
  return { ...histogram, buckets: { ...histogram.buckets } };
}

/** Records `value` in place: for accumulators, which own their copy. */
export function addValue(histogram: Histogram, value: number): void {
  const safe = Number.isFinite(value) && value > 0 ? value : 0;
  const key = String(bucketIndex(safe));
  histogram.count += 1;
  histogram.sum += safe;
  histogram.min = histogram.min === null ? safe : Math.min(histogram.min, safe);
  histogram.max = histogram.max === null ? safe : Math.max(histogram.max, safe);
  histogram.buckets[key] = (histogram.buckets[key] ?? 0) + 1;
}

/** A new histogram with `value` recorded; the input is left as it was. */
export function recordValue(histogram: Histogram, value: number): Histogram {
  const next = copyHistogram(histogram);
  addValue(next, value);
  return next;
}

/** The value at quantile `q` (0..1), clamped to the exact min and max; null when empty. */
export function quantile(histogram: Histogram, q: number): number | null {
  if (histogram.count === 0 || histogram.min === null || histogram.max === null) return null;
  const rank = Math.max(1, Math.ceil(q * histogram.count));
  const indexes = Object.keys(histogram.buckets)
    .map(Number)
    .sort((a, b) => a - b);
  let seen = 0;
  for (const index of indexes) {
    seen += histogram.buckets[String(index)]!;
    if (seen >= rank) {
      return Math.min(histogram.max, Math.max(histogram.min, bucketMidpoint(index)));
    }
  }
  return histogram.max;
}

/** The mean, or null when empty. */
export function mean(histogram: Histogram): number | null {
  return histogram.count === 0 ? null : histogram.sum / histogram.count;
}
