import { describe, expect, it } from 'vitest';
import type { EventInput } from '../../schema/events.ts';
import {
  classifyFailure,
  classifyRecordedError,
  describeError,
} from '../../projections/failure-classification.ts';
import { failureGroups, jobFailures, retryCandidates } from '../../projections/job-failures.ts';
import { fold } from '../../projections/projection.ts';
import { record } from '../arbitraries.ts';

type Expected = [category: string, retryable: boolean];
const network: Expected = ['network', true];
const timeout: Expected = ['timeout', true];
const extraction: Expected = ['extraction', false];
const analysis: Expected = ['analysis', false];
const output: Expected = ['output', false];
const auth: Expected = ['auth', false];
const notApplicable: Expected = ['not_applicable', false];
const unknown: Expected = ['unknown', false];

/** Real error messages as producers send them over HTTP: the message text alone. */
const cases: [source: string, message: string, expected: Expected][] = [
  // Node
  ['node', 'connect ETIMEDOUT 10.0.0.7:443', timeout],
  ['node', 'read ECONNRESET', network],
  ['node', 'connect ECONNREFUSED 127.0.0.1:5432', network],
  ['node', 'getaddrinfo ENOTFOUND api.example.org', network],
  ['node', 'getaddrinfo EAI_AGAIN registry.example.org', network],
  ['node', 'write EPIPE', network],
  ['node', 'connect EHOSTUNREACH 10.0.0.9:443', network],
  ['node', 'socket hang up', network],
  ['node', 'TypeError: fetch failed', network],
  ['node', 'Request failed with status code 502', network],
  ['node', 'Response code 503 (Service Unavailable)', network],
  ['node', 'HTTP 503 Service Unavailable', network],
  ['node', '429 Too Many Requests', network],
  ['node', 'HTTP 504 Gateway Timeout', timeout],
  ['node', 'The operation was aborted due to timeout', timeout],
  ['node', 'HTTP 401 Unauthorized', auth],
  ['node', 'Request failed with status code 403', auth],
  ['node', 'unable to verify the first certificate', auth],
  ['node', 'self-signed certificate in certificate chain', auth],
  ['node', 'HTTP 404 Not Found', notApplicable],
  ['node', 'HTTP 415 Unsupported Media Type', notApplicable],
  ['node', "ENOSPC: no space left on device, write '/out/part-7.ttl'", output],
  ['node', "EACCES: permission denied, open '/out/x.ttl'", output],
  ['node', "EROFS: read-only file system, open '/mnt/out/x.json'", output],
  ['node', "EPERM: operation not permitted, rename '/out/a.tmp' -> '/out/a'", output],
  ['node', "EMFILE: too many open files, open '/in/17.json'", output],
  ['node', 'Unexpected token < in JSON at position 0', extraction],
  ['node', `SyntaxError: Unexpected token '<', "<!DOCTYPE "... is not valid JSON`, extraction],
  ['node', 'Unexpected end of JSON input', extraction],
  ['node', 'Invalid character in header content ["content-disposition"]', unknown],
  ['node', 'TypeError [ERR_INVALID_CHAR]: Invalid character in header content', extraction],
  ['node', 'unexpected end of file', extraction],
  ['node', 'incorrect header check', extraction],
  ['node', "TypeError: Cannot read properties of undefined (reading 'title')", analysis],
  ['node', 'RangeError: Maximum call stack size exceeded', analysis],
  ['node', "ENOENT: no such file or directory, open '/in/x.json'", unknown],
  // Python
  ['python', 'json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)', extraction],
  [
    'python',
    "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte",
    extraction,
  ],
  ['python', 'zipfile.BadZipFile: File is not a zip file', extraction],
  ['python', 'tarfile.ReadError: file could not be opened successfully', extraction],
  ['python', "gzip.BadGzipFile: Not a gzipped file (b'<!')", extraction],
  [
    'python',
    "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='api.example.org', port=443): Max retries exceeded with url: /v1/items (Caused by NewConnectionError('<urllib3.connection.HTTPSConnection object at 0x7f3a2c1d0>: Failed to establish a new connection: [Errno 111] Connection refused'))",
    network,
  ],
  [
    'python',
    "requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='api.example.org', port=443): Read timed out. (read timeout=10)",
    timeout,
  ],
  [
    'python',
    "requests.exceptions.Timeout: HTTPSConnectionPool(host='api.example.org', port=443): Max retries exceeded with url: / (Caused by ConnectTimeoutError(<urllib3.connection.HTTPSConnection object at 0x7f3a>, 'Connection to api.example.org timed out. (connect timeout=5)'))",
    timeout,
  ],
  [
    'python',
    "urllib3.exceptions.MaxRetryError: HTTPConnectionPool(host='10.0.0.7', port=80): Max retries exceeded with url: /x (Caused by ResponseError('too many 503 error responses'))",
    network,
  ],
  [
    'python',
    "requests.exceptions.ConnectionError: ('Connection aborted.', RemoteDisconnected('Remote end closed connection without response'))",
    network,
  ],
  ['python', 'socket.timeout: timed out', timeout],
  ['python', 'urllib.error.HTTPError: HTTP Error 404: Not Found', notApplicable],
  [
    'python',
    'requests.exceptions.HTTPError: 503 Server Error: Service Unavailable for url: https://api.example.org/v1',
    network,
  ],
  [
    'python',
    "requests.exceptions.SSLError: HTTPSConnectionPool(host='x.example.org', port=443): Max retries exceeded with url: / (Caused by SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer certificate (_ssl.c:1006)')))",
    auth,
  ],
  ['python', "PermissionError: [Errno 13] Permission denied: '/out/x.ttl'", output],
  ['python', 'OSError: [Errno 28] No space left on device', output],
  ['python', "FileNotFoundError: [Errno 2] No such file or directory: '/in/x.json'", unknown],
  ['python', "KeyError: 'title'", analysis],
  ['python', "AttributeError: 'NoneType' object has no attribute 'text'", analysis],
  [
    'python',
    'pydantic_core._pydantic_core.ValidationError: 1 validation error for Record',
    analysis,
  ],
  ['python', 'MemoryError', unknown],
  // Elixir / Erlang
  [
    'elixir',
    '** (exit) exited in: GenServer.call(Crawler.Pool, :checkout, 5000)\n    ** (EXIT) time out',
    timeout,
  ],
  ['elixir', '{:error, :timeout}', timeout],
  ['elixir', '%Mint.TransportError{reason: :econnrefused}', network],
  ['elixir', '%HTTPoison.Error{reason: :nxdomain, id: nil}', network],
  ['elixir', '%Mint.TransportError{reason: :closed}', network],
  ['elixir', '** (Jason.DecodeError) unexpected byte at position 0: 0x3C ("<")', extraction],
  [
    'elixir',
    '** (File.Error) could not write to file "/out/x.ttl": no space left on device',
    output,
  ],
  ['elixir', '** (FunctionClauseError) no function clause matching in Parser.title/1', analysis],
  // Go
  [
    'go',
    'Get "https://api.example.org/v1": context deadline exceeded (Client.Timeout exceeded while awaiting headers)',
    timeout,
  ],
  ['go', 'read tcp 10.0.0.2:51234->10.0.0.7:443: i/o timeout', timeout],
  ['go', 'read tcp 10.0.0.2:51234->10.0.0.7:443: read: connection reset by peer', network],
  ['go', 'dial tcp: lookup api.example.org on 10.0.0.1:53: no such host', network],
  ['go', 'dial tcp 10.0.0.7:443: connect: connection refused', network],
  ['go', 'Post "https://api.example.org/v1/items": EOF', network],
  ['go', 'unexpected EOF', extraction],
  ['go', "invalid character '<' looking for beginning of value", extraction],
  ['go', 'gzip: invalid header', extraction],
  ['go', 'zip: not a valid zip file', extraction],
  ['go', 'x509: certificate signed by unknown authority', auth],
  ['go', 'unexpected status code: 503', network],
  ['go', 'open /out/x.ttl: read-only file system', output],
  ['go', 'panic: runtime error: invalid memory address or nil pointer dereference', analysis],
  // curl
  ['curl', 'curl: (6) Could not resolve host: api.example.org', network],
  [
    'curl',
    'curl: (7) Failed to connect to 10.0.0.7 port 443 after 3 ms: Connection refused',
    network,
  ],
  [
    'curl',
    'curl: (28) Operation timed out after 30001 milliseconds with 0 bytes received',
    timeout,
  ],
  ['curl', 'curl: (35) SSL connect error', network],
  ['curl', 'curl: (56) Recv failure: Connection reset by peer', network],
  ['curl', 'curl: (52) Empty reply from server', network],
  ['curl', 'curl: (22) The requested URL returned error: 503', network],
  ['curl', 'curl: (22) The requested URL returned error: 404', notApplicable],
  ['curl', 'curl: (60) SSL certificate problem: unable to get local issuer certificate', auth],
  ['curl', 'curl: (23) Failure writing output to destination', output],
  // tar, gzip, unzip
  ['tar', 'tar: Unexpected EOF in archive', extraction],
  ['tar', 'gzip: stdin: not in gzip format', extraction],
  ['tar', 'tar: Error is not recoverable: exiting now', extraction],
  ['tar', 'tar: This does not look like a tar archive', extraction],
  ['tar', 'gzip: stdin: unexpected end of file', extraction],
  ['tar', 'tar: out/x.ttl: Cannot write: No space left on device', output],
  ['tar', 'tar: out/x.ttl: Cannot open: Permission denied', output],
  ['unzip', 'End-of-central-directory signature not found.', extraction],
  // Producers' own words
  ['ssh', 'git@example.org: Permission denied (publickey).', auth],
  ['s3', 'AccessDenied: Access Denied', auth],
  ['api', 'invalid token', auth],
  ['api', 'unsupported format: application/x-msdownload', notApplicable],
  ['api', 'something else went wrong', unknown],
];

describe('classification of message text', () => {
  it('has many real messages from every source', () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
    expect(new Set(cases.map(([source]) => source))).toEqual(
      new Set(['node', 'python', 'elixir', 'go', 'curl', 'tar', 'unzip', 'ssh', 's3', 'api']),
    );
  });

  it.each(cases)('%s: %s', (_source, message, [category, retryable]) => {
    expect(classifyFailure({ message })).toEqual({ category, retryable });
    expect(classifyRecordedError({ message })).toEqual({ category, retryable });
  });

  it('agrees with the failures projection fed recorded item.failed events', () => {
    const events: EventInput[] = [
      { type: 'job.started', data: { name: 'crawl', kind: 'crawl', project: 'web' } },
      ...cases.map(([, message], index): EventInput => ({
        type: 'item.failed',
        data: { itemId: `item-${index}`, error: { message } },
      })),
    ];
    const state = fold(jobFailures, record(events.map((event) => ({ streamId: 'job-1', event }))));
    const byItem = new Map<string, Expected>();
    for (const group of failureGroups(state)) {
      for (const itemId of group.itemIds) {
        byItem.set(itemId, [group.category, group.count === group.retryable]);
        // Within a group every failure classifies alike: all retryable or none.
        expect([0, group.count]).toContain(group.retryable);
      }
    }
    const candidates = new Set(retryCandidates(state).map((candidate) => candidate.itemId));
    cases.forEach(([, message, [category, retryable]], index) => {
      const itemId = `item-${index}`;
      expect({ message, result: byItem.get(itemId) }).toEqual({
        message,
        result: [category, retryable],
      });
      expect({ message, candidate: candidates.has(itemId) }).toEqual({
        message,
        candidate: retryable,
      });
    });
  });
});

describe('precedence', () => {
  it('lets structured facts win over the message text', () => {
    expect(classifyFailure({ message: 'HTTP 503 Service Unavailable', code: 'ENOSPC' })).toEqual({
      category: 'output',
      retryable: false,
    });
    expect(classifyFailure({ message: 'timed out', status: 401 })).toEqual({
      category: 'auth',
      retryable: false,
    });
    expect(classifyFailure({ message: 'invalid token', name: 'SyntaxError' })).toEqual({
      category: 'extraction',
      retryable: false,
    });
    // A code no rule knows leaves the text to decide.
    expect(classifyFailure({ message: 'HTTP 503', code: 'E1' })).toEqual({
      category: 'network',
      retryable: true,
    });
  });

  it('lets the producer’s category, retryable word and rules win over the text', () => {
    expect(classifyFailure({ message: 'HTTP 503', category: 'analysis' })).toEqual({
      category: 'analysis',
      retryable: false,
    });
    expect(classifyFailure({ message: 'read ECONNRESET', retryable: false })).toEqual({
      category: 'network',
      retryable: false,
    });
    expect(classifyFailure({ message: 'tar: Unexpected EOF in archive', retryable: true })).toEqual(
      { category: 'extraction', retryable: true },
    );
    const rules = [
      { match: { messagePattern: String.raw`\bcaptcha\b` }, category: 'auth', retryable: true },
      { match: { messagePattern: 'unexpected EOF' }, category: 'network' },
    ];
    expect(classifyFailure({ message: 'HTTP 503: captcha required' }, rules)).toEqual({
      category: 'auth',
      retryable: true,
    });
    expect(classifyFailure({ message: 'unexpected EOF' }, rules)).toEqual({
      category: 'network',
      retryable: true,
    });
    // not_applicable is never retried, whatever the producer says.
    expect(classifyFailure({ message: '404 Not Found', retryable: true })).toEqual({
      category: 'not_applicable',
      retryable: false,
    });
  });

  it('treats an invalid producer pattern as matching nothing', () => {
    expect(
      classifyFailure({ message: 'HTTP 503' }, [
        { match: { messagePattern: '(' }, category: 'auth' },
      ]),
    ).toEqual({
      category: 'network',
      retryable: true,
    });
  });

  it('classifies a thrown error whose code sits only in its message', () => {
    expect(describeError(new Error("EACCES: permission denied, open '/out/x.ttl'"))).toMatchObject({
      code: 'EACCES',
      category: 'output',
      retryable: false,
    });
    expect(describeError('curl: (6) Could not resolve host: x.example.org')).toMatchObject({
      category: 'network',
      retryable: true,
    });
  });

  it('does not read numbers that are no HTTP status as one', () => {
    for (const message of [
      'processed 503 items',
      'exit status 1',
      'row 404 has 3 columns',
      'port 5000 in use',
    ]) {
      expect(classifyFailure({ message })).toEqual({ category: 'unknown', retryable: false });
    }
  });
});
