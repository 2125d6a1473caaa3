-- The event log (docs/architecture.md, "The log"): an append-only table of events and one row per stream
-- holding its head version, which is the row that serialises appends to that stream.

CREATE TABLE streams (
  stream_id  text        PRIMARY KEY,
  version    bigint      NOT NULL CHECK (version >= 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE events (
  position       bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- Readers follow (transaction_id, position), never position alone: see headway_read_all.
  transaction_id xid8        NOT NULL DEFAULT pg_current_xact_id(),
  stream_id      text        NOT NULL,
  version        bigint      NOT NULL CHECK (version >= 1),
  event_id       uuid        NOT NULL,
  type           text        NOT NULL,
  schema_version integer     NOT NULL,
  data           jsonb       NOT NULL,
  metadata       jsonb       NOT NULL DEFAULT '{}',
  occurred_at    timestamptz NOT NULL,
  recorded_at    timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT events_event_id_key UNIQUE (event_id),
  CONSTRAINT events_stream_version_key UNIQUE (stream_id, version)
);

CREATE INDEX events_transaction_position_idx ON events (transaction_id, position);

-- Events are immutable: rows are never updated or deleted, the table never truncated.
CREATE FUNCTION headway_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'events are immutable: % on % is not allowed', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'HW003';
END
$$;

CREATE TRIGGER events_no_update_or_delete
  BEFORE UPDATE OR DELETE ON events
  FOR EACH ROW EXECUTE FUNCTION headway_reject_change();

CREATE TRIGGER events_no_truncate
  BEFORE TRUNCATE ON events
  FOR EACH STATEMENT EXECUTE FUNCTION headway_reject_change();

-- Appends events to one or more streams in the caller's transaction, in one round trip.
--
-- p_stream_ids / p_expected: one entry per stream. p_expected encodes the mode:
--   -1 any, -2 no_stream, -3 stream_exists, n >= 0 the exact head version.
-- p_event_streams: for each event, the 1-based index of its stream in p_stream_ids;
--   the other p_* arrays hold the events' columns in append order.
--
-- Idempotent retry: a stream whose event ids were all appended before (to that stream)
-- writes nothing and returns the original rows. A batch that only partly matches an
-- earlier one raises HW002. An expected-version mismatch raises HW001. Both carry a
-- JSON DETAIL the client turns into a typed error.
CREATE FUNCTION headway_append(
  p_stream_ids      text[],
  p_expected        bigint[],
  p_event_streams   integer[],
  p_event_ids       uuid[],
  p_types           text[],
  p_schema_versions integer[],
  p_data            jsonb[],
  p_metadata        jsonb[],
  p_occurred_at     timestamptz[]
) RETURNS TABLE (
  out_stream_id      text,
  out_event_id       uuid,
  out_position       bigint,
  out_version        bigint,
  out_transaction_id xid8,
  out_recorded_at    timestamptz
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_streams   integer := coalesce(array_length(p_stream_ids, 1), 0);
  v_base      bigint[] := array_fill(0::bigint, ARRAY[v_streams]);
  v_retry     boolean[] := array_fill(false, ARRAY[v_streams]);
  v_index     integer;
  v_stream    text;
  v_expected  bigint;
  v_current   bigint;
  v_wanted    integer := 0;
  v_inserted  integer;
  v_count     integer;
  v_existing  integer;
  v_new       integer;
BEGIN
  -- Lock every stream row, in a stable order so concurrent multi-stream appends
  -- cannot deadlock, and check the expected versions.
  FOR v_index IN
    SELECT t.ord FROM unnest(p_stream_ids) WITH ORDINALITY AS t(sid, ord) ORDER BY t.sid
  LOOP
    v_stream := p_stream_ids[v_index];
    v_expected := p_expected[v_index];
    SELECT s.version INTO v_current FROM streams s WHERE s.stream_id = v_stream FOR UPDATE;
    IF NOT FOUND THEN
      INSERT INTO streams (stream_id, version) VALUES (v_stream, 0)
        ON CONFLICT (stream_id) DO NOTHING;
      SELECT s.version INTO v_current FROM streams s WHERE s.stream_id = v_stream FOR UPDATE;
    END IF;
    v_base[v_index] := v_current;

    IF NOT (v_expected = -1
            OR (v_expected = -2 AND v_current = 0)
            OR (v_expected = -3 AND v_current > 0)
            OR v_expected = v_current) THEN
      SELECT count(*) INTO v_count FROM unnest(p_event_streams) AS e(si) WHERE e.si = v_index;
      SELECT count(*), count(*) FILTER (WHERE ev.stream_id = v_stream)
        INTO v_existing, v_new
        FROM events ev
        JOIN unnest(p_event_streams, p_event_ids) AS e(si, id) ON ev.event_id = e.id
       WHERE e.si = v_index;
      IF v_new = v_count AND v_count > 0 THEN
        v_retry[v_index] := true;
      ELSIF v_existing > 0 THEN
        RAISE EXCEPTION 'batch partly repeats events appended before, on stream %', v_stream
          USING ERRCODE = 'HW002',
                DETAIL = json_build_object(
                  'streamId', v_stream, 'repeated', v_existing, 'events', v_count)::text;
      ELSE
        RAISE EXCEPTION 'expected version mismatch on stream %', v_stream
          USING ERRCODE = 'HW001',
                DETAIL = json_build_object(
                  'streamId', v_stream, 'expected', v_expected, 'actual', v_current)::text;
      END IF;
    END IF;
  END LOOP;

  SELECT count(*) INTO v_wanted
    FROM unnest(p_event_streams) AS e(si) WHERE NOT v_retry[e.si];

  RETURN QUERY
  WITH input AS (
    SELECT e.si, e.id, e.t, e.sv, e.d, e.m, e.o,
           v_base[e.si] + row_number() OVER (PARTITION BY e.si ORDER BY e.ord) AS version
      FROM unnest(p_event_streams, p_event_ids, p_types, p_schema_versions,
                  p_data, p_metadata, p_occurred_at)
           WITH ORDINALITY AS e(si, id, t, sv, d, m, o, ord)
     WHERE NOT v_retry[e.si]
  ), inserted AS (
    INSERT INTO events (stream_id, version, event_id, type, schema_version, data, metadata,
                        occurred_at)
    SELECT p_stream_ids[i.si], i.version, i.id, i.t, i.sv, i.d, i.m, i.o
      FROM input i ORDER BY i.si, i.version
    ON CONFLICT (event_id) DO NOTHING
    RETURNING stream_id, event_id, position, version, transaction_id, recorded_at
  ), heads AS (
    UPDATE streams s SET version = h.version, updated_at = now()
      FROM (SELECT stream_id, max(version) AS version FROM inserted GROUP BY stream_id) h
     WHERE s.stream_id = h.stream_id
  )
  SELECT * FROM inserted;
  GET DIAGNOSTICS v_inserted = ROW_COUNT;

  IF v_inserted < v_wanted THEN
    -- Some ids were taken already. A stream that got no new rows and all of whose ids
    -- were appended to it before is a retry; anything else half overlaps an earlier batch.
    FOR v_index IN 1 .. v_streams LOOP
      CONTINUE WHEN v_retry[v_index];
      v_stream := p_stream_ids[v_index];
      SELECT count(*) INTO v_count FROM unnest(p_event_streams) AS e(si) WHERE e.si = v_index;
      SELECT count(*) INTO v_new
        FROM events ev WHERE ev.stream_id = v_stream AND ev.version > v_base[v_index];
      CONTINUE WHEN v_new = v_count;
      SELECT count(*) INTO v_existing
        FROM events ev
        JOIN unnest(p_event_streams, p_event_ids) AS e(si, id) ON ev.event_id = e.id
       WHERE e.si = v_index AND ev.stream_id = v_stream AND ev.version <= v_base[v_index];
      IF v_new = 0 AND v_existing = v_count THEN
        v_retry[v_index] := true;
      ELSE
        RAISE EXCEPTION 'batch partly repeats events appended before, on stream %', v_stream
          USING ERRCODE = 'HW002',
                DETAIL = json_build_object(
                  'streamId', v_stream, 'repeated', v_count - v_new, 'events', v_count)::text;
      END IF;
    END LOOP;
  END IF;

  -- The original rows of retried streams.
  RETURN QUERY
  SELECT ev.stream_id, ev.event_id, ev.position, ev.version, ev.transaction_id, ev.recorded_at
    FROM unnest(p_event_streams, p_event_ids) AS e(si, id)
    JOIN events ev ON ev.event_id = e.id
   WHERE v_retry[e.si];
END
$$;
