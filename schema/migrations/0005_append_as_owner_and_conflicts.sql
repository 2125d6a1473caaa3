-- headway_append runs with its owner's rights (SECURITY DEFINER), so that an app role may
-- append through it without any write privilege on events or streams (docs/architecture.md, "The log"; see
-- `headway roles`). Its search_path is fixed to pg_catalog and pg_temp, last, so no caller
-- can slip its own objects in; the tables are named with the schema the migration runs in,
-- which is written into the body here. A retry is checked against what it repeats: the same
-- event id with another type, schema version, data or metadata raises HW005 naming the
-- ids, never a silent success. HW002 (a batch that partly repeats an earlier one) names the
-- repeated ids too. The rest is as in 0002.
--
-- CREATE OR REPLACE keeps the function's grants: later migrations must not drop it either,
-- or `headway migrate` cannot find the app roles to grant to again.

-- The wake-up names the table's schema: inside headway_append, current_schema() is
-- pg_catalog.
CREATE OR REPLACE FUNCTION headway_notify_append() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('headway_events', TG_TABLE_SCHEMA);
  RETURN NULL;
END
$$;

DO $migration$
BEGIN
  EXECUTE replace($function$
-- Appends events to one or more streams in the caller's transaction, in one round trip.
--
-- p_stream_ids / p_expected: one entry per stream. p_expected encodes the mode:
--   -1 any, -2 no_stream, -3 stream_exists, n >= 0 the exact head version.
-- p_event_streams: for each event, the 1-based index of its stream in p_stream_ids;
--   the other p_* arrays hold the events' columns in append order; p_data and
--   p_metadata are JSON arrays with one value per event.
--
-- Idempotent retry: a stream whose event ids were all appended before (to that stream),
-- with the same type, schema version, data and metadata, writes nothing and returns the
-- original rows; occurred_at is not compared, since a producer that leaves it out gets the
-- time of each call. Other content raises HW005. A batch that only partly matches an
-- earlier one raises HW002. An expected-version mismatch raises HW001. Each carries a
-- JSON DETAIL the client turns into a typed error.
CREATE OR REPLACE FUNCTION headway_append(
  p_stream_ids      text[],
  p_expected        bigint[],
  p_event_streams   integer[],
  p_event_ids       uuid[],
  p_types           text[],
  p_schema_versions integer[],
  p_data            jsonb,
  p_metadata        jsonb,
  p_occurred_at     timestamptz[]
) RETURNS TABLE (
  out_stream_id      text,
  out_event_id       uuid,
  out_position       bigint,
  out_version        bigint,
  out_transaction_id xid8,
  out_recorded_at    timestamptz
)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
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
  v_any_retry boolean := false;
  v_ids       jsonb;
  v_fields    jsonb;
BEGIN
  IF jsonb_array_length(p_data) <> coalesce(array_length(p_event_ids, 1), 0)
     OR jsonb_array_length(p_metadata) <> coalesce(array_length(p_event_ids, 1), 0) THEN
    RAISE EXCEPTION 'headway_append: expected one data and one metadata value per event';
  END IF;

  -- Lock every stream row, in a stable order so concurrent multi-stream appends
  -- cannot deadlock, and check the expected versions.
  FOR v_index IN
    SELECT t.ord FROM unnest(p_stream_ids) WITH ORDINALITY AS t(sid, ord) ORDER BY t.sid
  LOOP
    v_stream := p_stream_ids[v_index];
    v_expected := p_expected[v_index];
    SELECT s.version INTO v_current FROM @schema@.streams s WHERE s.stream_id = v_stream FOR UPDATE;
    IF NOT FOUND THEN
      INSERT INTO @schema@.streams (stream_id, version) VALUES (v_stream, 0)
        ON CONFLICT (stream_id) DO NOTHING;
      SELECT s.version INTO v_current FROM @schema@.streams s WHERE s.stream_id = v_stream FOR UPDATE;
    END IF;
    v_base[v_index] := v_current;

    IF NOT (v_expected = -1
            OR (v_expected = -2 AND v_current = 0)
            OR (v_expected = -3 AND v_current > 0)
            OR v_expected = v_current) THEN
      SELECT count(*) INTO v_count FROM unnest(p_event_streams) AS e(si) WHERE e.si = v_index;
      SELECT count(*), count(*) FILTER (WHERE ev.stream_id = v_stream),
             coalesce(jsonb_agg(e.id ORDER BY e.ord), '[]')
        INTO v_existing, v_new, v_ids
        FROM @schema@.events ev
        JOIN unnest(p_event_streams, p_event_ids) WITH ORDINALITY AS e(si, id, ord)
          ON ev.event_id = e.id
       WHERE e.si = v_index;
      IF v_new = v_count AND v_count > 0 THEN
        v_retry[v_index] := true;
        v_any_retry := true;
      ELSIF v_existing > 0 THEN
        RAISE EXCEPTION 'batch partly repeats events appended before, on stream %', v_stream
          USING ERRCODE = 'HW002',
                DETAIL = json_build_object(
                  'streamId', v_stream, 'repeated', v_existing, 'events', v_count,
                  'eventIds', v_ids)::text;
      ELSE
        RAISE EXCEPTION 'expected version mismatch on stream %', v_stream
          USING ERRCODE = 'HW001',
                DETAIL = json_build_object(
                  'streamId', v_stream, 'expected', v_expected, 'actual', v_current)::text;
      END IF;
    END IF;
  END LOOP;

  IF v_any_retry THEN
    SELECT count(*) INTO v_wanted
      FROM unnest(p_event_streams) AS e(si) WHERE NOT v_retry[e.si];
  ELSE
    v_wanted := coalesce(array_length(p_event_ids, 1), 0);
  END IF;

  RETURN QUERY
  WITH input AS (
    SELECT e.si, e.id, e.t, e.sv, e.d, e.m, e.o,
           v_base[e.si] + row_number() OVER (PARTITION BY e.si ORDER BY e.ord) AS version
      FROM ROWS FROM (unnest(p_event_streams), unnest(p_event_ids), unnest(p_types),
                      unnest(p_schema_versions), jsonb_array_elements(p_data),
                      jsonb_array_elements(p_metadata), unnest(p_occurred_at))
           WITH ORDINALITY AS e(si, id, t, sv, d, m, o, ord)
     WHERE NOT v_retry[e.si]
  ), inserted AS (
    INSERT INTO @schema@.events (stream_id, version, event_id, type, schema_version, data,
                                 metadata, occurred_at)
    SELECT p_stream_ids[i.si], i.version, i.id, i.t, i.sv, i.d, i.m, i.o
      FROM input i ORDER BY i.si, i.version
    ON CONFLICT (event_id) DO NOTHING
    RETURNING stream_id, event_id, position, version, transaction_id, recorded_at
  ), heads AS (
    UPDATE @schema@.streams s SET version = h.version, updated_at = now()
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
        FROM @schema@.events ev WHERE ev.stream_id = v_stream AND ev.version > v_base[v_index];
      CONTINUE WHEN v_new = v_count;
      SELECT count(*) INTO v_existing
        FROM @schema@.events ev
        JOIN unnest(p_event_streams, p_event_ids) AS e(si, id) ON ev.event_id = e.id
       WHERE e.si = v_index AND ev.stream_id = v_stream AND ev.version <= v_base[v_index];
      IF v_new = 0 AND v_existing = v_count THEN
        v_retry[v_index] := true;
        v_any_retry := true;
      ELSE
        SELECT coalesce(jsonb_agg(e.id ORDER BY e.ord), '[]') INTO v_ids
          FROM @schema@.events ev
          JOIN unnest(p_event_streams, p_event_ids) WITH ORDINALITY AS e(si, id, ord)
            ON ev.event_id = e.id
         WHERE e.si = v_index
           AND NOT (ev.stream_id = v_stream AND ev.version > v_base[v_index]);
        RAISE EXCEPTION 'batch partly repeats events appended before, on stream %', v_stream
          USING ERRCODE = 'HW002',
                DETAIL = json_build_object(
                  'streamId', v_stream, 'repeated', v_count - v_new, 'events', v_count,
                  'eventIds', v_ids)::text;
      END IF;
    END LOOP;
  END IF;

  IF v_any_retry THEN
    -- A retry repeats its events: the first retried stream (in input order) whose events
    -- differ from the stored ones is a conflict. jsonb compares by value, so key order and
    -- spacing do not count.
    SELECT min(e.si) INTO v_index
      FROM ROWS FROM (unnest(p_event_streams), unnest(p_event_ids), unnest(p_types),
                      unnest(p_schema_versions), jsonb_array_elements(p_data),
                      jsonb_array_elements(p_metadata))
           AS e(si, id, t, sv, d, m)
      JOIN @schema@.events ev ON ev.event_id = e.id
     WHERE v_retry[e.si]
       AND (ev.type, ev.schema_version, ev.data, ev.metadata)
           IS DISTINCT FROM (e.t, e.sv, e.d, e.m);
    IF v_index IS NOT NULL THEN
      SELECT jsonb_agg(e.id ORDER BY e.ord),
             to_jsonb(array_remove(ARRAY[
               CASE WHEN bool_or(ev.type <> e.t) THEN 'type' END,
               CASE WHEN bool_or(ev.schema_version <> e.sv) THEN 'schemaVersion' END,
               CASE WHEN bool_or(ev.data <> e.d) THEN 'data' END,
               CASE WHEN bool_or(ev.metadata <> e.m) THEN 'metadata' END], NULL))
        INTO v_ids, v_fields
        FROM ROWS FROM (unnest(p_event_streams), unnest(p_event_ids), unnest(p_types),
                        unnest(p_schema_versions), jsonb_array_elements(p_data),
                        jsonb_array_elements(p_metadata))
             WITH ORDINALITY AS e(si, id, t, sv, d, m, ord)
        JOIN @schema@.events ev ON ev.event_id = e.id
       WHERE e.si = v_index
         AND (ev.type, ev.schema_version, ev.data, ev.metadata)
             IS DISTINCT FROM (e.t, e.sv, e.d, e.m);
      SELECT count(*) INTO v_count FROM unnest(p_event_streams) AS e(si) WHERE e.si = v_index;
      RAISE EXCEPTION 'event ids appended before with other content, on stream %',
                      p_stream_ids[v_index]
        USING ERRCODE = 'HW005',
              DETAIL = json_build_object(
                'streamId', p_stream_ids[v_index], 'repeated', jsonb_array_length(v_ids),
                'events', v_count, 'eventIds', v_ids, 'fields', v_fields)::text;
    END IF;

    -- The original rows of retried streams.
    RETURN QUERY
    SELECT ev.stream_id, ev.event_id, ev.position, ev.version, ev.transaction_id, ev.recorded_at
      FROM unnest(p_event_streams, p_event_ids) AS e(si, id)
      JOIN @schema@.events ev ON ev.event_id = e.id
     WHERE v_retry[e.si];
  END IF;
END
$body$
$function$, '@schema@', quote_ident(current_schema()));

  -- Only roles granted EXECUTE may append (the owner keeps it): see `headway roles`.
  REVOKE EXECUTE ON FUNCTION headway_append(text[], bigint[], integer[], uuid[], text[],
                                            integer[], jsonb, jsonb, timestamptz[])
    FROM PUBLIC;
END
$migration$;
