import dns from 'node:dns';
import type { LookupAddress } from 'node:dns';
import net from 'node:net';

/** Why a webhook target was refused. */
export type WebhookTargetErrorCode =
  'invalid_url' | 'scheme' | 'credentials' | 'address_not_allowed' | 'no_address';

/** A webhook URL or the address it resolves to may not be sent to; `code` says why. */
export class WebhookTargetError extends Error {
  readonly code: WebhookTargetErrorCode;

  constructor(code: WebhookTargetErrorCode, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The longest webhook URL accepted, in characters. */
export const maxWebhookUrlLength = 2048;

/** Resolves every address of a host name, like `dns.promises.lookup` with `all: true`. */
export type WebhookLookup = (hostname: string, options: { all: true }) => Promise<LookupAddress[]>;

type Subnet = readonly [network: string, prefix: number];

// One list per kind, so a refusal can say which kind of address it met. `BlockList.check`
// also matches IPv4-mapped IPv6 forms (::ffff:127.0.0.1) against the IPv4 subnets.
const nonPublicRanges: ReadonlyArray<readonly [kind: string, subnets: readonly Subnet[]]> = [
  [
    'unspecified',
    [
      ['0.0.0.0', 8],
      ['::', 128],
    ],
  ],
  [
    'loopback',
    [
      ['127.0.0.0', 8],
      ['::1', 128],
    ],
  ],
  [
    'private',
    [
      ['10.0.0.0', 8],
      ['172.16.0.0', 12],
      ['192.168.0.0', 16],
      ['fc00::', 7],
    ],
  ],
  [
    'link-local',
    [
      ['169.254.0.0', 16],
      ['fe80::', 10],
    ],
  ],
  ['shared (CGNAT)', [['100.64.0.0', 10]]],
  [
    'multicast',
    [
      ['224.0.0.0', 4],
      ['ff00::', 8],
    ],
  ],
  ['broadcast', [['255.255.255.255', 32]]],
  [
    'reserved',
    [
      // IETF protocol assignments, benchmarking, and the old class E.
      ['192.0.0.0', 24],
      ['198.18.0.0', 15],
      ['240.0.0.0', 4],
    ],
  ],
  [
    'translated (NAT64, 6to4)',
    [
      // IPv6 forms that carry an IPv4 address a gateway may turn into a private one.
      ['64:ff9b::', 96],
      ['64:ff9b:1::', 48],
      ['2002::', 16],
    ],
  ],
];

const blockLists = nonPublicRanges.map(([kind, subnets]) => {
  const list = new net.BlockList();
  for (const [network, prefix] of subnets) {
    list.addSubnet(network, prefix, net.isIPv4(network) ? 'ipv4' : 'ipv6');
  }
  return [kind, list] as const;
});

/**
 * The kind of non-public range `address` falls in (`'loopback'`, `'private'`, …), or null
 * for a public address. Anything that is not an IP address counts as `'not an IP address'`.
 * @example nonPublicRange('::ffff:10.0.0.1') // 'private'
 */
export function nonPublicRange(address: string): string | null {
  // A zone id (fe80::1%eth0) names an interface, not part of the address.
  const bare = address.replace(/%.*$/, '');
  const version = net.isIP(bare);
  if (version === 0) return 'not an IP address';
  const type = version === 4 ? 'ipv4' : 'ipv6';
  for (const [kind, list] of blockLists) {
    if (list.check(bare, type)) return kind;
  }
  return null;
}

/**
 * Parses a webhook URL and checks its shape: http or https, no credentials, at most 2048
 * characters, and an IP-literal host public or listed in `allowHosts`.
 * @example checkWebhookUrl('https://hooks.example.com/in', []).hostname // 'hooks.example.com'
 */
export function checkWebhookUrl(url: string, allowHosts: readonly string[]): URL {
  if (url.length > maxWebhookUrlLength) {
    throw new WebhookTargetError(
      'invalid_url',
      `Webhook URL: expected at most ${maxWebhookUrlLength} characters, received ${url.length}`,
    );
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new WebhookTargetError(
      'invalid_url',
      `Webhook URL: expected an absolute http or https URL, received ${JSON.stringify(abbreviate(url))}`,
    );
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new WebhookTargetError(
      'scheme',
      `Webhook URL: expected the http: or https: scheme, received ${JSON.stringify(abbreviate(parsed.protocol))}`,
    );
  }
  if (parsed.username !== '' || parsed.password !== '') {
    // Never echo the credentials themselves.
    throw new WebhookTargetError(
      'credentials',
      `Webhook URL: expected no user name or password, received a URL with ${parsed.password === '' ? 'a user name' : 'credentials'}; send them in a header instead`,
    );
  }
  const host = bareHost(parsed.hostname);
  if (net.isIP(host) !== 0) checkAddress(parsed.hostname, host, allowHosts);
  return parsed;
}

/**
 * Resolves `hostname` to all its addresses and refuses (`WebhookTargetError`, code
 * `address_not_allowed`) when any of them is not public, unless `allowHosts` names the host
 * as written (case-insensitive). An IP literal is checked as it is, without DNS.
 * @example await resolveWebhookAddresses('hooks.example.com', []) // [{ address: '93.184.216.34', family: 4 }]
 */
export async function resolveWebhookAddresses(
  hostname: string,
  allowHosts: readonly string[],
  lookup: WebhookLookup = dns.promises.lookup,
): Promise<LookupAddress[]> {
  const host = bareHost(hostname);
  const version = net.isIP(host);
  if (version !== 0) {
    checkAddress(hostname, host, allowHosts);
    return [{ address: host, family: version }];
  }
  const addresses = await lookup(host, { all: true });
  if (addresses.length === 0) {
    throw new WebhookTargetError(
      'no_address',
      `Webhook host ${hostname}: expected DNS to resolve it to an address, received none`,
    );
  }
  // Every address counts: the connection may go to any of them.
  for (const { address } of addresses) checkAddress(hostname, address, allowHosts);
  return addresses;
}

/**
 * A `lookup` for `net`/`http` that checks, as each connection is made, the very addresses it
 * connects to, so a DNS answer that changes after an earlier check (rebinding) is caught.
 * @example http.request(url, { lookup: webhookLookup(allowHosts) })
 */
export function webhookLookup(
  allowHosts: readonly string[],
  lookup: WebhookLookup = dns.promises.lookup,
): net.LookupFunction {
  return (hostname, options, callback) => {
    resolveWebhookAddresses(hostname, allowHosts, lookup).then(
      (addresses) => {
        const family = familyOf(options.family);
        const fitting =
          family === 0 ? addresses : addresses.filter((entry) => entry.family === family);
        const first = fitting[0];
        if (first === undefined) {
          callback(
            new WebhookTargetError(
              'no_address',
              `Webhook host ${hostname}: expected an IPv${family} address, received none`,
            ),
            '',
          );
        } else if (options.all === true) {
          callback(null, fitting);
        } else {
          callback(null, first.address, first.family);
        }
      },
      (error: NodeJS.ErrnoException) => callback(error, ''),
    );
  };
}

function checkAddress(hostname: string, address: string, allowHosts: readonly string[]): void {
  const kind = nonPublicRange(address);
  if (kind === null || isAllowed(hostname, allowHosts)) return;
  const host = bareHost(hostname);
  const what =
    host === address ? `is a ${kind} address` : `resolves to ${address}, a ${kind} address`;
  throw new WebhookTargetError(
    'address_not_allowed',
    `Webhook host ${hostname} ${what}: expected a public address; allow ${JSON.stringify(host)} by name (headway serve --webhook-allow-hosts, or allowHosts) to send to it`,
  );
}

function isAllowed(hostname: string, allowHosts: readonly string[]): boolean {
  const host = bareHost(hostname).toLowerCase();
  return allowHosts.some((allowed) => bareHost(allowed).toLowerCase() === host);
}

// URLs write IPv6 hosts in brackets; addresses and allow lists do not.
function bareHost(hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
}

function familyOf(family: dns.LookupOptions['family']): 0 | 4 | 6 {
  if (family === 4 || family === 'IPv4') return 4;
  if (family === 6 || family === 'IPv6') return 6;
  return 0;
}

function abbreviate(text: string): string {
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}
