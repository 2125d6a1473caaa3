import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { Database } from '../../schema/database.ts';
import { toExportLine } from '../append/ndjson.ts';
import { HeadwayError } from '../errors.ts';
import { toRecordedEvent } from '../store/recorded-row.ts';
import type { EventRow } from '../store/recorded-row.ts';
import type { EventPartition } from './event-partitions.ts';

/** What an archive file holds, as written and as read back. */
export interface ArchiveFile {
  file: string;
  events: number;
  sha256: string;
}

const page = 5_000;
// Archives keep each event as stored: no upcasting, so an import restores the same rows.
const noUpcasters = new Map();

/**
 * Writes every event of a partition to a new NDJSON file in the export format (each job's
 * events in version order), flushed to disk with its folder, then reads it back and checks
 * the count and the sha256. Refuses to overwrite a file.
 */
export async function writeArchive(
  db: Kysely<Database>,
  partition: EventPartition,
  file: string,
): Promise<ArchiveFile> {
  await mkdir(dirname(file), { recursive: true });
  const handle = await open(file, 'wx');
  const hash = createHash('sha256');
  let events = 0;
  try {
    let after: { streamId: string; version: number } | null = null;
    for (;;) {
      const rows: EventRow[] = (
        await sql<EventRow>`
          select position, transaction_id, stream_id, version, event_id, type, schema_version,
                 data, metadata,
                 (date_part('epoch', occurred_at) * 1000000)::int8 as occurred_us,
                 (date_part('epoch', recorded_at) * 1000000)::int8 as recorded_us
            from ${sql.id(partition.name)}
           where ${after === null ? sql`true` : sql`(stream_id, version) > (${after.streamId}, ${after.version})`}
           order by stream_id, version
           limit ${page}`.execute(db)
      ).rows;
      if (rows.length === 0) break;
      const text = rows
        .map((row) => `${JSON.stringify(toExportLine(toRecordedEvent(row, noUpcasters)))}\n`)
        .join('');
      hash.update(text);
      await handle.write(text);
      events += rows.length;
      const last = rows.at(-1)!;
      after = { streamId: last.stream_id, version: Number(last.version) };
      if (rows.length < page) break;
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
  await syncFolder(dirname(file));
  const written = { file, events, sha256: hash.digest('hex') };
  const read = await readArchive(file);
  if (read.events !== written.events || read.sha256 !== written.sha256) {
    throw new HeadwayError(
      'invalid_input',
      `Archive ${file}: expected ${written.events} events with sha256 ${written.sha256} when read back, received ${read.events} with ${read.sha256}`,
    );
  }
  return written;
}

/** Counts an archive's lines and hashes its bytes. */
export async function readArchive(file: string): Promise<ArchiveFile> {
  const hash = createHash('sha256');
  let events = 0;
  const input = createReadStream(file);
  input.on('data', (chunk) => hash.update(chunk));
  for await (const line of createInterface({ input, crlfDelay: Infinity })) {
    if (line.trim() !== '') events += 1;
  }
  return { file, events, sha256: hash.digest('hex') };
}

/** Makes a new file's name durable (where the platform lets a folder be synced). */
async function syncFolder(folder: string): Promise<void> {
  const handle = await open(folder, 'r');
  try {
    await handle.sync();
  } catch {
    // Some platforms refuse to sync a folder; the file itself is synced already.
  } finally {
    await handle.close();
  }
}
