import { createHmac, timingSafeEqual } from 'node:crypto';

/** The request header that carries a webhook's signature. */
export const signatureHeader = 'Headway-Signature';

/** How far a signature's timestamp may be from the receiver's clock by default, in seconds. */
export const defaultToleranceSeconds = 300;

/**
 * The `Headway-Signature` value for `body` sent at `timestampSeconds`: the timestamp and the
 * hex HMAC-SHA256 of `<t>.<body>` keyed by `secret`.
 * @example signWebhook('whsec', '{"a":1}', 1700000000) // 't=1700000000,v1=5d1c…'
 */
export function signWebhook(secret: string, body: string, timestampSeconds: number): string {
  if (secret === '') throw new RangeError('signWebhook: expected a non-empty secret, received ""');
  if (!Number.isSafeInteger(timestampSeconds) || timestampSeconds < 0) {
    throw new RangeError(
      `signWebhook: expected a timestamp in whole unix seconds, received ${timestampSeconds}`,
    );
  }
  return `t=${timestampSeconds},v1=${hmacHex(secret, timestampSeconds, body)}`;
}

/** When a receiver checks a signature, and how much clock skew (or replay delay) it accepts. */
export interface VerifyWebhookOptions {
  nowSeconds: number;
  /** Defaults to 300 s. */
  toleranceSeconds?: number;
}

/**
 * True when `header` is a signature of `body` by `secret`, made within the tolerance of
 * `nowSeconds`; false for anything else, malformed headers included (it never throws).
 * @example verifyWebhookSignature(secret, rawBody, req.headers['headway-signature'], { nowSeconds })
 */
export function verifyWebhookSignature(
  secret: string,
  body: string,
  header: string | readonly string[] | undefined,
  { nowSeconds, toleranceSeconds = defaultToleranceSeconds }: VerifyWebhookOptions,
): boolean {
  if (typeof secret !== 'string' || secret === '' || typeof body !== 'string') return false;
  // A repeated header is ambiguous; refuse it rather than pick one.
  if (typeof header !== 'string' || header.length > 4096) return false;
  if (!Number.isFinite(nowSeconds) || !(toleranceSeconds >= 0)) return false;

  let timestamp: number | null = null;
  const signatures: string[] = [];
  for (const part of header.split(',')) {
    const [key, value, extra] = part.trim().split('=');
    if (value === undefined || extra !== undefined) return false;
    if (key === 't') {
      if (timestamp !== null || !/^\d{1,15}$/.test(value)) return false;
      timestamp = Number(value);
    } else if (key === 'v1') {
      if (!/^[0-9a-f]{64}$/i.test(value)) return false;
      signatures.push(value.toLowerCase());
    }
    // Other schemes (a future v2) are skipped, as a receiver of several versions would.
  }
  if (timestamp === null || signatures.length === 0) return false;
  if (Math.abs(nowSeconds - timestamp) > toleranceSeconds) return false;

  const expected = Buffer.from(hmacHex(secret, timestamp, body));
  // Several v1 values let a sender sign with an old and a new secret while rotating.
  let matched = false;
  for (const signature of signatures) {
    if (timingSafeEqual(expected, Buffer.from(signature))) matched = true;
  }
  return matched;
}

function hmacHex(secret: string, timestampSeconds: number, body: string): string {
  return createHmac('sha256', secret).update(`${timestampSeconds}.${body}`).digest('hex');
}
