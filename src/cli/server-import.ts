import { notStartedAtLine } from '../append/ndjson.ts';
import type { ImportedStream, ImportWriter } from '../append/ndjson.ts';
import { HttpStatusError } from '../client/index.ts';
import type { HeadwayClient } from '../client/index.ts';
import { JobNotStartedError } from '../errors.ts';

/** Most bytes of events in one request: well under a server's default body limit (16 MiB). */
const requestBytes = 4 * 1024 * 1024;
/** Streams imported side by side; each stream's own requests go one after another. */
const streamsAtOnce = 4;

/**
 * An import writer that appends through a server's `POST /v1/jobs/:id/events`: each
 * stream's events in order, at their own versions (as the expected version), with their
 * ids, times, schema versions and metadata. An append's answer says where the events are,
 * not whether it stored them, so each request is preceded by a read of the event at its
 * first version: when that is already its own first event, the part was imported before,
 * and the append (an idempotent retry, which checks the content is the same) stores
 * nothing. A batch partly stored before is refused by the server, as by a local import.
 */
export function serverImportWriter(client: HeadwayClient): ImportWriter {
  return async (streams) => {
    let written = 0;
    let next = 0;
    const work = async () => {
      while (next < streams.length) {
        const stream = streams[next++]!;
        for (const part of requestParts(stream)) {
          // Awaited first: `written += await …` would add to the count read before the wait.
          const stored = await appendPart(client, part, streams);
          written += stored;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(streamsAtOnce, streams.length) }, work));
    return written;
  };
}

/** Appends one part of a stream; resolves to how many of its events were new. */
async function appendPart(
  client: HeadwayClient,
  part: ImportedStream,
  streams: readonly ImportedStream[],
): Promise<number> {
  const first = part.events[0]!;
  const [there] = await client.readStream(part.streamId, {
    fromVersion: part.firstVersion,
    limit: 1,
  });
  const present = there !== undefined && there.eventId === first.eventId;
  try {
    await client.append(part.streamId, part.events, { expectedVersion: part.firstVersion - 1 });
  } catch (error) {
    if (error instanceof HttpStatusError && errorCode(error) === 'job_not_started') {
      throw notStartedAtLine(new JobNotStartedError(part.streamId, first.type), streams);
    }
    throw error;
  }
  return present ? 0 : part.events.length;
}

/** A stream's events in parts that each fit one request, each at its own first version. */
function* requestParts(stream: ImportedStream): Generator<ImportedStream> {
  let start = 0;
  let bytes = 0;
  for (const [index, event] of stream.events.entries()) {
    const size = Buffer.byteLength(JSON.stringify(event));
    if (index > start && bytes + size > requestBytes) {
      yield partOf(stream, start, index);
      start = index;
      bytes = 0;
    }
    bytes += size;
  }
  yield partOf(stream, start, stream.events.length);
}

function partOf(stream: ImportedStream, from: number, to: number): ImportedStream {
  return {
    ...stream,
    firstVersion: stream.firstVersion + from,
    events: stream.events.slice(from, to),
  };
}

function errorCode(error: HttpStatusError): unknown {
  return (error.body as { error?: { code?: unknown } } | null)?.error?.code;
}
