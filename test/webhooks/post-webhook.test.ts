import { once } from 'node:events';
import http from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { LookupAddress } from 'node:dns';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { postWebhook } from '../../src/webhooks/post-webhook.ts';
import type { WebhookRequest } from '../../src/webhooks/post-webhook.ts';
import {
  signatureHeader,
  signWebhook,
  verifyWebhookSignature,
} from '../../src/webhooks/webhook-signature.ts';
import {
  checkWebhookUrl,
  nonPublicRange,
  resolveWebhookAddresses,
  WebhookTargetError,
  webhookLookup,
} from '../../src/webhooks/webhook-target.ts';
import type { WebhookLookup } from '../../src/webhooks/webhook-target.ts';

// Every request here goes to a receiver on a loopback address started by the test; names
// other than localhost are only ever given to fake lookups, never to DNS.

interface Received {
  method: string | undefined;
  headers: IncomingHttpHeaders;
  body: string;
}

interface Receiver {
  url: string;
  port: number;
  received: Received[];
  /** Connections accepted, whether or not a request came over them. */
  connections: number;
  /** Resolves when every accepted connection has closed. */
  allClosed(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

const servers: http.Server[] = [];

afterEach(async () => {
  await Promise.all(
    servers.splice(0).map((server) => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    }),
  );
});

async function startReceiver(handler: Handler, host = '127.0.0.1'): Promise<Receiver> {
  const received: Received[] = [];
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      received.push({ method: req.method, headers: req.headers, body });
      handler(req, res, body);
    });
  });
  const receiver: Receiver = {
    url: '',
    port: 0,
    received,
    connections: 0,
    async allClosed() {
      const open = [...sockets].filter((socket) => !socket.closed);
      // Not events.once: that rejects on the reset a hang-up may cause.
      await Promise.all(
        open.map((socket) => new Promise((resolve) => socket.on('close', resolve))),
      );
    },
  };
  server.on('connection', (socket: Socket) => {
    receiver.connections += 1;
    sockets.add(socket);
  });
  // A client hanging up mid-response (as postWebhook does past its cap) resets the socket.
  server.on('clientError', (_error, socket) => socket.destroy());
  servers.push(server);
  server.listen(0, host);
  await once(server, 'listening');
  receiver.port = (server.address() as AddressInfo).port;
  receiver.url = `http://${host}:${receiver.port}`;
  return receiver;
}

const answer =
  (status: number, body = '', headers: Record<string, string> = {}): Handler =>
  (_req, res) => {
    res.writeHead(status, headers).end(body);
  };

function webhook(url: string, overrides: Partial<WebhookRequest> = {}): WebhookRequest {
  return {
    url,
    body: '{"type":"job.completed"}',
    headers: {},
    timeoutMs: 5_000,
    maxResponseBytes: 1024,
    allowHosts: ['127.0.0.1'],
    ...overrides,
  };
}

describe('signWebhook and verifyWebhookSignature', () => {
  const secret = 'whsec_test';
  const now = 1_700_000_000;

  it('signs <t>.<body> with HMAC-SHA256 in a t=…,v1=… header', () => {
    expect(signWebhook(secret, '{}', now)).toMatch(/^t=1700000000,v1=[0-9a-f]{64}$/);
    expect(signWebhook(secret, '{}', now)).not.toBe(signWebhook(secret, '{ }', now));
    expect(() => signWebhook(secret, '{}', 1.5)).toThrow(RangeError);
    expect(() => signWebhook('', '{}', now)).toThrow(RangeError);
  });

  it('a signed POST reaches the receiver, which accepts the signature and nothing altered', async () => {
    const receiver = await startReceiver(answer(200, 'thanks'));
    const body = JSON.stringify({ type: 'job.completed', jobId: 'job-1' });
    const result = await postWebhook(
      webhook(`${receiver.url}/hooks`, {
        body,
        headers: { [signatureHeader]: signWebhook(secret, body, now), 'x-delivery': 'd-1' },
      }),
    );

    expect(result).toMatchObject({ ok: true, status: 200, responseBody: 'thanks', error: null });
    expect(result.durationMs).toBeGreaterThanOrEqual(0);
    expect(receiver.received).toHaveLength(1);
    const [delivery] = receiver.received;
    expect(delivery!.method).toBe('POST');
    expect(delivery!.body).toBe(body);
    expect(delivery!.headers['content-type']).toBe('application/json');
    expect(delivery!.headers['user-agent']).toBe('headway-webhooks');
    expect(delivery!.headers['x-delivery']).toBe('d-1');

    const header = delivery!.headers['headway-signature'];
    const verify = (options: { secret?: string; body?: string; nowSeconds?: number } = {}) =>
      verifyWebhookSignature(options.secret ?? secret, options.body ?? delivery!.body, header, {
        nowSeconds: options.nowSeconds ?? now + 10,
      });
    expect(verify()).toBe(true);
    expect(verify({ body: body.replace('job-1', 'job-2') })).toBe(false);
    expect(verify({ secret: 'whsec_other' })).toBe(false);
    expect(verify({ nowSeconds: now + 301 })).toBe(false);
    expect(verify({ nowSeconds: now - 301 })).toBe(false);
    expect(
      verifyWebhookSignature(secret, body, header, { nowSeconds: now + 30, toleranceSeconds: 20 }),
    ).toBe(false);
  });

  it('accepts any of several v1 signatures (secret rotation) and skips unknown schemes', () => {
    const good = signWebhook(secret, 'x', now);
    const other = signWebhook('whsec_old', 'x', now).split(',')[1]!;
    const options = { nowSeconds: now };
    expect(verifyWebhookSignature(secret, 'x', `${good},${other}`, options)).toBe(true);
    expect(verifyWebhookSignature(secret, 'x', `${other},${good},v2=abc`, options)).toBe(true);
    expect(verifyWebhookSignature('whsec_old', 'x', `${good},${other}`, options)).toBe(true);
  });

  it('refuses malformed headers without throwing', () => {
    const good = signWebhook(secret, 'x', now);
    const v1 = good.split(',')[1]!;
    const malformed: Array<string | string[] | undefined> = [
      undefined,
      '',
      'garbage',
      v1,
      `t=${now}`,
      `t=abc,${v1}`,
      `t=-5,${v1}`,
      `t=${now},t=${now},${v1}`,
      `t=${now},v1=zz`,
      `t=${now},v1=${'0'.repeat(63)}`,
      `${good}=`,
      [good, good],
      'x'.repeat(10_000),
    ];
    for (const header of malformed) {
      expect(verifyWebhookSignature(secret, 'x', header, { nowSeconds: now }), String(header)).toBe(
        false,
      );
    }
    expect(verifyWebhookSignature('', 'x', good, { nowSeconds: now })).toBe(false);
    expect(verifyWebhookSignature(secret, 'x', good, { nowSeconds: Number.NaN })).toBe(false);
  });
});

describe('checkWebhookUrl', () => {
  function refusal(url: string, allowHosts: readonly string[] = []): WebhookTargetError {
    try {
      checkWebhookUrl(url, allowHosts);
    } catch (error) {
      if (error instanceof WebhookTargetError) return error;
      throw error;
    }
    throw new Error(`expected ${url} to be refused`);
  }

  it('accepts http and https URLs', () => {
    expect(checkWebhookUrl('https://hooks.example.com/in?x=1', []).hostname).toBe(
      'hooks.example.com',
    );
    expect(checkWebhookUrl('http://93.184.216.34:8080/in', []).port).toBe('8080');
  });

  it('refuses other schemes', () => {
    for (const url of ['ftp://hooks.example.com/', 'file:///etc/passwd', 'javascript:alert(1)']) {
      const error = refusal(url);
      expect(error.code).toBe('scheme');
      expect(error.message).toMatch(/expected the http: or https: scheme, received/);
    }
  });

  it('refuses credentials without echoing them', () => {
    for (const url of ['http://user:hunter2@127.0.0.1/', 'https://hunter2@hooks.example.com/']) {
      const error = refusal(url, ['127.0.0.1']);
      expect(error.code).toBe('credentials');
      expect(error.message).not.toContain('hunter2');
    }
  });

  it('refuses what is not a URL, and URLs over 2048 characters', () => {
    expect(refusal('not a url').code).toBe('invalid_url');
    expect(refusal('/relative/path').code).toBe('invalid_url');
    const long = refusal(`https://hooks.example.com/${'a'.repeat(2048)}`);
    expect(long.code).toBe('invalid_url');
    expect(long.message).toMatch(/expected at most 2048 characters, received 2074/);
  });

  it('checks IP-literal hosts as written, unless allowed', () => {
    expect(refusal('http://127.0.0.2/').code).toBe('address_not_allowed');
    expect(refusal('http://[::1]:8080/').code).toBe('address_not_allowed');
    expect(refusal('http://[::ffff:10.0.0.1]/').code).toBe('address_not_allowed');
    // The URL parser reads 0x7f.1 as 127.0.0.1.
    expect(refusal('http://0x7f.1/').code).toBe('address_not_allowed');
    expect(checkWebhookUrl('http://[::1]:8080/', ['::1']).hostname).toBe('[::1]');
    expect(checkWebhookUrl('http://[::1]:8080/', ['[::1]']).hostname).toBe('[::1]');
    expect(refusal('http://127.0.0.2/', ['127.0.0.1']).message).toMatch(
      /127\.0\.0\.2 is a loopback address: expected a public address/,
    );
  });
});

describe('address classification', () => {
  /** A lookup that answers from a table and records the names asked, so no DNS is used. */
  function fakeLookup(answers: Record<string, string[]>): WebhookLookup & { asked: string[] } {
    const asked: string[] = [];
    const lookup = (hostname: string): Promise<LookupAddress[]> => {
      asked.push(hostname);
      const addresses = answers[hostname] ?? [];
      return Promise.resolve(
        addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
      );
    };
    return Object.assign(lookup, { asked });
  }

  const refused: Array<[address: string, kind: string]> = [
    ['10.1.2.3', 'private'],
    ['172.20.0.1', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.1.1', 'link-local'],
    ['169.254.169.254', 'link-local'],
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['0.0.0.0', 'unspecified'],
    ['100.64.0.1', 'shared (CGNAT)'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['fe80::1', 'link-local'],
    ['fd00::1', 'private'],
    ['fc00::1', 'private'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:169.254.169.254', 'link-local'],
    ['192.0.0.8', 'reserved'],
    ['198.19.1.1', 'reserved'],
    ['240.1.2.3', 'reserved'],
    ['64:ff9b::a00:1', 'translated (NAT64, 6to4)'],
    ['2002:a00:1::1', 'translated (NAT64, 6to4)'],
  ];
  const allowed = ['93.184.216.34', '2606:2800::1', '172.32.0.1', '100.128.0.1', '8.8.8.8'];

  it.each(refused)('refuses %s (%s) resolved from a name', async (address, kind) => {
    const lookup = fakeLookup({ 'hooks.example.test': [address] });
    expect(nonPublicRange(address)).toBe(kind);
    const refusal = resolveWebhookAddresses('hooks.example.test', [], lookup);
    await expect(refusal).rejects.toBeInstanceOf(WebhookTargetError);
    await expect(refusal).rejects.toMatchObject({
      code: 'address_not_allowed',
      message: expect.stringContaining(`resolves to ${address}, a ${kind} address`),
    });
    expect(lookup.asked).toEqual(['hooks.example.test']);
  });

  it.each(allowed)('allows the public address %s', async (address) => {
    const lookup = fakeLookup({ 'hooks.example.test': [address] });
    expect(nonPublicRange(address)).toBeNull();
    await expect(resolveWebhookAddresses('hooks.example.test', [], lookup)).resolves.toEqual([
      { address, family: address.includes(':') ? 6 : 4 },
    ]);
  });

  it('refuses a name when any one of its addresses is not public', async () => {
    const lookup = fakeLookup({ 'mixed.example.test': ['93.184.216.34', '10.0.0.7'] });
    await expect(resolveWebhookAddresses('mixed.example.test', [], lookup)).rejects.toMatchObject({
      code: 'address_not_allowed',
    });
  });

  it('allows any address of a host allowed by name, case-insensitively', async () => {
    const lookup = fakeLookup({ 'internal.example.test': ['10.0.0.7', 'fd00::7'] });
    const addresses = await resolveWebhookAddresses(
      'internal.example.test',
      ['Internal.Example.TEST'],
      lookup,
    );
    expect(addresses.map((entry) => entry.address)).toEqual(['10.0.0.7', 'fd00::7']);
  });

  it('checks IP literals without a lookup, brackets stripped', async () => {
    const lookup = fakeLookup({});
    await expect(resolveWebhookAddresses('[::1]', [], lookup)).rejects.toMatchObject({
      code: 'address_not_allowed',
    });
    await expect(resolveWebhookAddresses('127.0.0.2', ['127.0.0.1'], lookup)).rejects.toMatchObject(
      { code: 'address_not_allowed' },
    );
    await expect(resolveWebhookAddresses('[::1]', ['::1'], lookup)).resolves.toEqual([
      { address: '::1', family: 6 },
    ]);
    await expect(resolveWebhookAddresses('93.184.216.34', [], lookup)).resolves.toEqual([
      { address: '93.184.216.34', family: 4 },
    ]);
    expect(lookup.asked).toEqual([]);
  });

  it('refuses a name that resolves to nothing', async () => {
    await expect(
      resolveWebhookAddresses('empty.example.test', [], fakeLookup({})),
    ).rejects.toMatchObject({ code: 'no_address' });
  });

  it('checks again at every connect, so a changed DNS answer (rebinding) is refused', async () => {
    let answer = ['93.184.216.34'];
    const lookup: WebhookLookup = () =>
      Promise.resolve(answer.map((address) => ({ address, family: 4 })));
    const connectLookup = webhookLookup([], lookup);
    const connect = (options: { all?: boolean; family?: number } = {}) =>
      new Promise<{ error: Error | null; address: unknown; family: unknown }>((resolve) =>
        connectLookup('rebind.example.test', options, (error, address, family) =>
          resolve({ error, address, family }),
        ),
      );

    expect(await connect()).toEqual({ error: null, address: '93.184.216.34', family: 4 });
    expect(await connect({ all: true })).toMatchObject({
      error: null,
      address: [{ address: '93.184.216.34', family: 4 }],
    });
    expect((await connect({ family: 6 })).error).toMatchObject({ code: 'no_address' });

    answer = ['127.0.0.1'];
    const rebound = await connect();
    expect(rebound.error).toBeInstanceOf(WebhookTargetError);
    expect(rebound.error).toMatchObject({ code: 'address_not_allowed' });
  });
});

describe('postWebhook', () => {
  it('sends to 127.0.0.1 when allowed, and refuses it without connecting when not', async () => {
    const receiver = await startReceiver(answer(204));
    expect(await postWebhook(webhook(receiver.url))).toMatchObject({
      ok: true,
      status: 204,
      error: null,
    });
    expect(receiver.connections).toBe(1);

    const refused = await postWebhook(webhook(receiver.url, { allowHosts: [] }));
    expect(refused).toMatchObject({ ok: false, status: null, responseBody: '' });
    expect(refused.error).toMatch(/127\.0\.0\.1 is a loopback address: expected a public address/);
    expect(receiver.connections).toBe(1);
  });

  it('refuses 127.0.0.2 (loopback, not allowed) without any connection', async () => {
    // Linux answers on all of 127/8; elsewhere the receiver stays on 127.0.0.1 and the check
    // rests on the error alone.
    const receiver = await startReceiver(answer(200), '127.0.0.2').catch(() =>
      startReceiver(answer(200)),
    );
    const result = await postWebhook(
      webhook(`http://127.0.0.2:${receiver.port}/hooks`, { allowHosts: ['127.0.0.1'] }),
    );
    expect(result).toMatchObject({ ok: false, status: null });
    expect(result.error).toMatch(/127\.0\.0\.2 is a loopback address/);
    expect(receiver.connections).toBe(0);
  });

  it('refuses localhost unless allowed by name', async () => {
    const receiver = await startReceiver(answer(200, 'hi'));
    const url = `http://localhost:${receiver.port}/hooks`;

    const refused = await postWebhook(webhook(url, { allowHosts: ['127.0.0.1', '::1'] }));
    expect(refused).toMatchObject({ ok: false, status: null });
    expect(refused.error).toMatch(/localhost resolves to .*, a loopback address/);
    expect(receiver.connections).toBe(0);

    const allowed = await postWebhook(webhook(url, { allowHosts: ['LocalHost'] }));
    expect(allowed).toMatchObject({ ok: true, status: 200, responseBody: 'hi' });
    expect(receiver.received).toHaveLength(1);
  });

  it('does not follow redirects', async () => {
    const target = await startReceiver(answer(200));
    const redirecting = await startReceiver(
      answer(302, 'moved', { location: `${target.url}/elsewhere` }),
    );
    const result = await postWebhook(webhook(`${redirecting.url}/hooks`));

    expect(result).toMatchObject({ ok: false, status: 302 });
    expect(result.error).toContain('redirects are not followed');
    expect(result.error).toContain(`${target.url}/elsewhere`);
    expect(redirecting.received).toHaveLength(1);
    expect(target.connections).toBe(0);
  });

  it('is not ok for a 500, and keeps its body', async () => {
    const receiver = await startReceiver(answer(500, 'boom'));
    const result = await postWebhook(webhook(receiver.url));
    expect(result).toMatchObject({ ok: false, status: 500, responseBody: 'boom' });
    expect(result.error).toMatch(/expected a 2xx status, received 500/);
  });

  it('times out a receiver that never answers, and drops the connection', async () => {
    const receiver = await startReceiver(() => {});
    const result = await postWebhook(webhook(receiver.url, { timeoutMs: 300 }));
    expect(result).toMatchObject({ ok: false, status: null, error: 'timed out after 300 ms' });
    expect(receiver.received).toHaveLength(1);
    await receiver.allClosed();
  });

  it('times out a response body that never ends', async () => {
    const receiver = await startReceiver((_req, res) => {
      res.writeHead(200);
      res.write('partial');
    });
    const result = await postWebhook(webhook(receiver.url, { timeoutMs: 300 }));
    expect(result).toMatchObject({
      ok: false,
      status: 200,
      responseBody: 'partial',
      error: 'timed out after 300 ms',
    });
    await receiver.allClosed();
  });

  it('reads at most maxResponseBytes of an endless body, then hangs up', async () => {
    let sent = 0;
    const receiver = await startReceiver((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      const chunk = Buffer.alloc(64 * 1024, 'a');
      // Writes until the client goes away, so the test would time out if it drained the body.
      const pump = () => {
        while (!res.destroyed) {
          sent += chunk.length;
          if (!res.write(chunk)) break;
        }
      };
      res.on('drain', pump);
      pump();
    });
    const result = await postWebhook(webhook(receiver.url, { maxResponseBytes: 1000 }));
    expect(result).toMatchObject({ ok: true, status: 200, error: null });
    expect(result.responseBody).toBe('a'.repeat(1000));
    await receiver.allClosed();
    expect(sent).toBeGreaterThan(1000);
  });

  it('caps the body on whole UTF-8 characters', async () => {
    const receiver = await startReceiver(answer(200, 'ééé'));
    const result = await postWebhook(webhook(receiver.url, { maxResponseBytes: 3 }));
    expect(result.responseBody).toBe('é');
  });

  it('reports a refused connection rather than throwing', async () => {
    const receiver = await startReceiver(answer(200));
    const closed = servers.pop()!;
    await new Promise((resolve) => closed.close(resolve));
    const result = await postWebhook(webhook(receiver.url));
    expect(result).toMatchObject({ ok: false, status: null });
    expect(result.error).toMatch(/ECONNREFUSED/);
  });

  it('refuses other schemes and credentials without connecting', async () => {
    const receiver = await startReceiver(answer(200));
    const scheme = await postWebhook(webhook(`ftp://127.0.0.1:${receiver.port}/`));
    expect(scheme).toMatchObject({ ok: false, status: null });
    expect(scheme.error).toMatch(/expected the http: or https: scheme/);
    const credentials = await postWebhook(
      webhook(`http://user:hunter2@127.0.0.1:${receiver.port}/`),
    );
    expect(credentials).toMatchObject({ ok: false, status: null });
    expect(credentials.error).toMatch(/expected no user name or password/);
    expect(receiver.connections).toBe(0);
  });

  it('throws for invalid arguments', async () => {
    await expect(postWebhook(webhook('http://127.0.0.1/', { timeoutMs: 0 }))).rejects.toThrow(
      RangeError,
    );
    await expect(
      postWebhook(webhook('http://127.0.0.1/', { maxResponseBytes: -1 })),
    ).rejects.toThrow(RangeError);
  });
});
