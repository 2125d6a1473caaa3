-- columns
archived_jobs.job_id text not null
archived_jobs.archive_id bigint not null
archived_jobs.project text
archived_jobs.kind text
archived_jobs.name text
archived_jobs.status text not null
archived_jobs.parent_job_id text
archived_jobs.updated_at double precision
archived_jobs.events bigint not null
archived_jobs.view jsonb not null
archived_jobs.summary jsonb not null
archives.archive_id bigint not null identity ALWAYS
archives.month date not null
archives.partition text not null
archives.file text not null
archives.events bigint not null
archives.jobs integer not null
archives.sha256 text not null
archives.archived_at timestamp with time zone not null default now()
events.position bigint not null identity ALWAYS
events.transaction_id xid8 not null default pg_current_xact_id()
events.stream_id text not null
events.version bigint not null
events.event_id uuid not null
events.type text not null
events.schema_version integer not null
events.data jsonb not null
events.metadata jsonb not null default '{}'::jsonb
events.occurred_at timestamp with time zone not null
events.recorded_at timestamp with time zone not null default now()
events.stream_month date not null default (date_trunc('month'::text, (now() AT TIME ZONE 'UTC'::text)))::date
events_default.position bigint not null identity ALWAYS
events_default.transaction_id xid8 not null default pg_current_xact_id()
events_default.stream_id text not null
events_default.version bigint not null
events_default.event_id uuid not null
events_default.type text not null
events_default.schema_version integer not null
events_default.data jsonb not null
events_default.metadata jsonb not null default '{}'::jsonb
events_default.occurred_at timestamp with time zone not null
events_default.recorded_at timestamp with time zone not null default now()
events_default.stream_month date not null default (date_trunc('month'::text, (now() AT TIME ZONE 'UTC'::text)))::date
kysely_migration.name character varying not null
kysely_migration.timestamp character varying not null
kysely_migration_lock.id character varying not null
kysely_migration_lock.is_locked integer not null default 0
projection_checkpoints.projection text not null
projection_checkpoints.generation integer not null
projection_checkpoints.code_version integer not null
projection_checkpoints.status text not null
projection_checkpoints.transaction_id xid8 not null default '0'::xid8
projection_checkpoints.position bigint not null default 0
projection_checkpoints.events bigint not null default 0
projection_checkpoints.created_at timestamp with time zone not null default now()
projection_checkpoints.updated_at timestamp with time zone not null default now()
projection_states.projection text not null
projection_states.generation integer not null
projection_states.key text not null
projection_states.part text not null
projection_states.value jsonb not null
streams.stream_id text not null
streams.version bigint not null
streams.created_at timestamp with time zone not null default now()
streams.updated_at timestamp with time zone not null default now()
streams.stream_month date not null default (date_trunc('month'::text, (now() AT TIME ZONE 'UTC'::text)))::date
streams.archived_at timestamp with time zone
webhook_deliveries.delivery_id uuid not null
webhook_deliveries.webhook_id text not null
webhook_deliveries.job_id text not null
webhook_deliveries.condition text not null
webhook_deliveries.event_position bigint not null
webhook_deliveries.payload jsonb not null
webhook_deliveries.status text not null default 'pending'::text
webhook_deliveries.attempts integer not null default 0
webhook_deliveries.attempt_log jsonb not null default '[]'::jsonb
webhook_deliveries.next_attempt_at timestamp with time zone not null default now()
webhook_deliveries.created_at timestamp with time zone not null default now()
webhook_deliveries.delivered_at timestamp with time zone
webhooks.webhook_id text not null
webhooks.url text not null
webhooks.secret text not null
webhooks.project text
webhooks.kind text
webhooks.job_id text
webhooks.conditions ARRAY not null
webhooks.description text
webhooks.created_at timestamp with time zone not null default now()
webhooks.removed_at timestamp with time zone
webhooks.transaction_id xid8 not null
webhooks.position bigint not null

-- constraints
archived_jobs archived_jobs_archive_id_fkey: FOREIGN KEY (archive_id) REFERENCES archives(archive_id)
archived_jobs archived_jobs_pkey: PRIMARY KEY (job_id)
archives archives_events_check: CHECK ((events >= 0))
archives archives_jobs_check: CHECK ((jobs >= 0))
archives archives_pkey: PRIMARY KEY (archive_id)
events events_event_id_key: UNIQUE (event_id, stream_month)
events events_pkey: PRIMARY KEY ("position", stream_month)
events events_stream_version_key: UNIQUE (stream_id, version, stream_month)
events events_version_check1: CHECK ((version >= 1))
events_default events_default_event_id_stream_month_key: UNIQUE (event_id, stream_month)
events_default events_default_pkey: PRIMARY KEY ("position", stream_month)
events_default events_default_stream_id_version_stream_month_key: UNIQUE (stream_id, version, stream_month)
events_default events_version_check1: CHECK ((version >= 1))
kysely_migration kysely_migration_pkey: PRIMARY KEY (name)
kysely_migration_lock kysely_migration_lock_pkey: PRIMARY KEY (id)
projection_checkpoints projection_checkpoints_generation_check: CHECK ((generation >= 1))
projection_checkpoints projection_checkpoints_pkey: PRIMARY KEY (projection, generation)
projection_checkpoints projection_checkpoints_status_check: CHECK ((status = ANY (ARRAY['building'::text, 'active'::text])))
projection_states projection_states_pkey: PRIMARY KEY (projection, generation, key, part)
streams streams_pkey: PRIMARY KEY (stream_id)
streams streams_version_check: CHECK ((version >= 0))
webhook_deliveries webhook_deliveries_pkey: PRIMARY KEY (delivery_id)
webhook_deliveries webhook_deliveries_status_check: CHECK ((status = ANY (ARRAY['pending'::text, 'delivered'::text, 'dead'::text])))
webhook_deliveries webhook_deliveries_webhook_id_fkey: FOREIGN KEY (webhook_id) REFERENCES webhooks(webhook_id)
webhooks webhooks_pkey: PRIMARY KEY (webhook_id)

-- indexes
CREATE INDEX archived_jobs_parent_idx ON archived_jobs USING btree (parent_job_id) WHERE (parent_job_id IS NOT NULL)
CREATE UNIQUE INDEX archived_jobs_pkey ON archived_jobs USING btree (job_id)
CREATE INDEX archived_jobs_updated_idx ON archived_jobs USING btree (updated_at DESC, job_id COLLATE "C")
CREATE UNIQUE INDEX archives_pkey ON archives USING btree (archive_id)
CREATE UNIQUE INDEX events_default_event_id_stream_month_key ON events_default USING btree (event_id, stream_month)
CREATE INDEX events_default_expr_stream_id_idx ON events_default USING btree (((data ->> 'parentJobId'::text)), stream_id) WHERE (type = 'job.started'::text)
CREATE UNIQUE INDEX events_default_pkey ON events_default USING btree ("position", stream_month)
CREATE INDEX events_default_stream_id_version_idx ON events_default USING btree (stream_id, version) WHERE (type = 'log.written'::text)
CREATE UNIQUE INDEX events_default_stream_id_version_stream_month_key ON events_default USING btree (stream_id, version, stream_month)
CREATE INDEX events_default_stream_month_idx ON events_default USING btree (stream_month)
CREATE INDEX events_default_transaction_id_position_idx ON events_default USING btree (transaction_id, "position")
CREATE UNIQUE INDEX events_event_id_key ON ONLY events USING btree (event_id, stream_month)
CREATE INDEX events_job_log_idx ON ONLY events USING btree (stream_id, version) WHERE (type = 'log.written'::text)
CREATE INDEX events_job_parent_idx ON ONLY events USING btree (((data ->> 'parentJobId'::text)), stream_id) WHERE (type = 'job.started'::text)
CREATE UNIQUE INDEX events_pkey ON ONLY events USING btree ("position", stream_month)
CREATE UNIQUE INDEX events_stream_version_key ON ONLY events USING btree (stream_id, version, stream_month)
CREATE INDEX events_transaction_position_idx ON ONLY events USING btree (transaction_id, "position")
CREATE UNIQUE INDEX kysely_migration_lock_pkey ON kysely_migration_lock USING btree (id)
CREATE UNIQUE INDEX kysely_migration_pkey ON kysely_migration USING btree (name)
CREATE UNIQUE INDEX projection_checkpoints_one_active ON projection_checkpoints USING btree (projection) WHERE (status = 'active'::text)
CREATE UNIQUE INDEX projection_checkpoints_one_building ON projection_checkpoints USING btree (projection) WHERE (status = 'building'::text)
CREATE UNIQUE INDEX projection_checkpoints_pkey ON projection_checkpoints USING btree (projection, generation)
CREATE UNIQUE INDEX projection_states_pkey ON projection_states USING btree (projection, generation, key, part)
CREATE INDEX projection_states_project_idx ON projection_states USING btree (projection, generation, (((value -> 'progress'::text) ->> 'project'::text))) WHERE (part = ''::text)
CREATE UNIQUE INDEX streams_pkey ON streams USING btree (stream_id)
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries USING btree (webhook_id, created_at DESC)
CREATE INDEX webhook_deliveries_due ON webhook_deliveries USING btree (next_attempt_at) WHERE (status = 'pending'::text)
CREATE INDEX webhook_deliveries_pending_by_job ON webhook_deliveries USING btree (webhook_id, job_id, event_position) WHERE (status = 'pending'::text)
CREATE UNIQUE INDEX webhook_deliveries_pkey ON webhook_deliveries USING btree (delivery_id)
CREATE UNIQUE INDEX webhooks_pkey ON webhooks USING btree (webhook_id)

-- triggers
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events FOR EACH STATEMENT EXECUTE FUNCTION headway_reject_change()
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events_default FOR EACH STATEMENT EXECUTE FUNCTION headway_reject_change()
CREATE TRIGGER events_no_update_or_delete BEFORE DELETE OR UPDATE ON events_default FOR EACH ROW EXECUTE FUNCTION headway_reject_change()
CREATE TRIGGER events_no_update_or_delete BEFORE DELETE OR UPDATE ON events FOR EACH ROW EXECUTE FUNCTION headway_reject_change()
CREATE TRIGGER events_notify AFTER INSERT ON events FOR EACH STATEMENT EXECUTE FUNCTION headway_notify_append()
CREATE TRIGGER streams_head_matches_log AFTER INSERT OR UPDATE ON streams FOR EACH ROW EXECUTE FUNCTION headway_check_stream_head()
CREATE TRIGGER streams_no_delete BEFORE DELETE ON streams FOR EACH ROW EXECUTE FUNCTION headway_reject_stream_change()
CREATE TRIGGER streams_no_truncate BEFORE TRUNCATE ON streams FOR EACH STATEMENT EXECUTE FUNCTION headway_reject_stream_change()

-- functions
CREATE OR REPLACE FUNCTION headway_append(p_stream_ids text[], p_expected bigint[], p_event_streams integer[], p_event_ids uuid[], p_types text[], p_schema_versions integer[], p_data jsonb, p_metadata jsonb, p_occurred_at timestamp with time zone[])
 RETURNS TABLE(out_stream_id text, out_event_id uuid, out_position bigint, out_version bigint, out_transaction_id xid8, out_recorded_at timestamp with time zone)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
  v_streams   integer := coalesce(array_length(p_stream_ids, 1), 0);
  v_base      bigint[] := array_fill(0::bigint, ARRAY[v_streams]);
  v_retry     boolean[] := array_fill(false, ARRAY[v_streams]);
  v_months    date[] := array_fill(NULL::date, ARRAY[v_streams]);
  v_index     integer;
  v_stream    text;
  v_expected  bigint;
  v_current   bigint;
  v_month     date;
  v_archived  timestamptz;
  v_this_month date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
  v_partitioned boolean := false;
  v_wanted    integer := 0;
  v_inserted  integer;
  v_count     integer;
  v_existing  integer;
  v_new       integer;
  v_any_retry boolean := false;
  v_ids       jsonb;
  v_fields    jsonb;
  v_first     text[];
  v_type      text;
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
    SELECT s.version, s.stream_month, s.archived_at INTO v_current, v_month, v_archived
      FROM streams s WHERE s.stream_id = v_stream FOR UPDATE;
    IF NOT FOUND THEN
      IF NOT v_partitioned THEN
        -- A new stream of a month: its partition, and the next month's ahead of need.
        PERFORM headway_events_partition(v_this_month, false);
        PERFORM headway_events_partition((v_this_month + interval '1 month')::date, false);
        v_partitioned := true;
      END IF;
      INSERT INTO streams (stream_id, version, stream_month) VALUES (v_stream, 0, v_this_month)
        ON CONFLICT (stream_id) DO NOTHING;
      SELECT s.version, s.stream_month, s.archived_at INTO v_current, v_month, v_archived
        FROM streams s WHERE s.stream_id = v_stream FOR UPDATE;
    END IF;
    v_base[v_index] := v_current;
    v_months[v_index] := v_month;

    IF v_archived IS NOT NULL THEN
      RAISE EXCEPTION 'job % is archived: its events were exported and its month dropped, so it takes no more events', v_stream
        USING ERRCODE = 'HW007',
              DETAIL = json_build_object('streamId', v_stream, 'archivedAt', v_archived)::text;
    END IF;

    IF NOT (v_expected = -1
            OR (v_expected = -2 AND v_current = 0)
            OR (v_expected = -3 AND v_current > 0)
            OR v_expected = v_current) THEN
      SELECT count(*) INTO v_count FROM unnest(p_event_streams) AS e(si) WHERE e.si = v_index;
      SELECT count(*), count(*) FILTER (WHERE ev.stream_id = v_stream),
             coalesce(jsonb_agg(e.id ORDER BY e.ord), '[]')
        INTO v_existing, v_new, v_ids
        FROM events ev
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

    -- Checked under the stream's lock, so a concurrent first batch cannot slip past it.
    IF v_current = 0 THEN
      IF p_event_streams[1] = v_index THEN
        -- The call's first event is this stream's: every one-stream call, at no cost.
        v_type := p_types[1];
      ELSE
        IF v_first IS NULL THEN
          SELECT array_agg(f.t ORDER BY s.i) INTO v_first
            FROM generate_series(1, v_streams) AS s(i)
            LEFT JOIN (SELECT DISTINCT ON (e.si) e.si, e.t
                         FROM unnest(p_event_streams, p_types) WITH ORDINALITY AS e(si, t, ord)
                        ORDER BY e.si, e.ord) f ON f.si = s.i;
        END IF;
        v_type := v_first[v_index];
      END IF;
      IF v_type IS DISTINCT FROM 'job.started' THEN
        RAISE EXCEPTION 'job % was never started: expected its first event to be job.started, received %',
                        v_stream, coalesce(v_type, 'no event')
          USING ERRCODE = 'HW006',
                DETAIL = json_build_object('streamId', v_stream, 'received', v_type)::text;
      END IF;
    END IF;
  END LOOP;

  IF v_any_retry THEN
    SELECT count(*) INTO v_wanted
      FROM unnest(p_event_streams) AS e(si) WHERE NOT v_retry[e.si];
  ELSE
    v_wanted := coalesce(array_length(p_event_ids, 1), 0);
  END IF;

  -- The unique key holds event ids within a month; an id a stream of another month holds is
  -- found here. Ids of the stream itself live in its own month and are left to the insert.
  -- One index probe per id and partition (a lateral lookup, so that no plan scans them).
  SELECT e.si INTO v_index
    FROM unnest(p_event_streams, p_event_ids) AS e(si, id)
    CROSS JOIN LATERAL (SELECT 1 FROM events ev
                         WHERE ev.event_id = e.id AND ev.stream_month <> v_months[e.si]
                         LIMIT 1) AS held
   WHERE NOT v_retry[e.si]
   LIMIT 1;
  IF FOUND THEN
    SELECT count(*) INTO v_count FROM unnest(p_event_streams) AS e(si) WHERE e.si = v_index;
    SELECT coalesce(jsonb_agg(e.id ORDER BY e.ord), '[]') INTO v_ids
      FROM unnest(p_event_streams, p_event_ids) WITH ORDINALITY AS e(si, id, ord)
     WHERE e.si = v_index
       AND EXISTS (SELECT 1 FROM events ev WHERE ev.event_id = e.id);
    RAISE EXCEPTION 'batch partly repeats events appended before, on stream %', p_stream_ids[v_index]
      USING ERRCODE = 'HW002',
            DETAIL = json_build_object(
              'streamId', p_stream_ids[v_index], 'repeated', jsonb_array_length(v_ids),
              'events', v_count, 'eventIds', v_ids)::text;
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
    INSERT INTO events (stream_id, version, event_id, type, schema_version, data,
                                 metadata, occurred_at, stream_month)
    SELECT p_stream_ids[i.si], i.version, i.id, i.t, i.sv, i.d, i.m, i.o, v_months[i.si]
      FROM input i ORDER BY i.si, i.version
    ON CONFLICT (event_id, stream_month) DO NOTHING
    RETURNING stream_id, event_id, position, version, transaction_id, recorded_at
  ), heads AS (
    UPDATE streams s SET version = h.version, updated_at = now()
      FROM (SELECT stream_id, max(version) AS version FROM inserted GROUP BY stream_id) h
     WHERE s.stream_id = h.stream_id AND s.stream_id = ANY (p_stream_ids)
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
        FROM events ev
       WHERE ev.stream_id = v_stream AND ev.stream_month = v_months[v_index]
         AND ev.version > v_base[v_index];
      CONTINUE WHEN v_new = v_count;
      SELECT count(*) INTO v_existing
        FROM events ev
        JOIN unnest(p_event_streams, p_event_ids) AS e(si, id) ON ev.event_id = e.id
       WHERE e.si = v_index AND ev.stream_id = v_stream AND ev.version <= v_base[v_index];
      IF v_new = 0 AND v_existing = v_count THEN
        v_retry[v_index] := true;
        v_any_retry := true;
      ELSE
        SELECT coalesce(jsonb_agg(e.id ORDER BY e.ord), '[]') INTO v_ids
          FROM events ev
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
      JOIN events ev ON ev.event_id = e.id
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
        JOIN events ev ON ev.event_id = e.id
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
      JOIN events ev ON ev.event_id = e.id
     WHERE v_retry[e.si];
  END IF;
END
$function$

CREATE OR REPLACE FUNCTION headway_check_stream_head()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
DECLARE
  v_head bigint;
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.stream_id IS DISTINCT FROM OLD.stream_id THEN
    RAISE EXCEPTION 'stream heads follow the log: stream % cannot be renamed to %',
                    OLD.stream_id, NEW.stream_id
      USING ERRCODE = 'HW004';
  END IF;
  IF TG_OP = 'UPDATE' AND NEW.stream_month IS DISTINCT FROM OLD.stream_month THEN
    RAISE EXCEPTION 'stream heads follow the log: the month of stream % cannot change from % to %',
                    OLD.stream_id, OLD.stream_month, NEW.stream_month
      USING ERRCODE = 'HW004';
  END IF;
  IF TG_OP = 'UPDATE' AND OLD.archived_at IS NOT NULL THEN
    RAISE EXCEPTION 'stream heads follow the log: stream % is archived', OLD.stream_id
      USING ERRCODE = 'HW004';
  END IF;
  -- The top of the (stream_id, version) index: one probe. max(version) read every entry
  -- of the stream, so each append cost as much as the stream was long.
  SELECT coalesce((SELECT e.version FROM events e
                    WHERE e.stream_id = NEW.stream_id AND e.stream_month = NEW.stream_month
                    ORDER BY e.version DESC LIMIT 1), 0)
    INTO v_head;
  IF NEW.version IS DISTINCT FROM v_head THEN
    RAISE EXCEPTION 'stream heads follow the log: stream % has events up to version %, so its head must be %, received %',
                    NEW.stream_id, v_head, v_head, NEW.version
      USING ERRCODE = 'HW004',
            HINT = 'streams.version is kept by headway_append; append events instead of writing it';
  END IF;
  RETURN NULL;
END
$function$

CREATE OR REPLACE FUNCTION headway_events_partition(p_month date, p_wait boolean)
 RETURNS boolean
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
  v_month date := date_trunc('month', p_month)::date;
  v_name  text := 'events_' || to_char(p_month, 'YYYY_MM');
  v_owner name;
  v_lock_timeout text := current_setting('lock_timeout');
BEGIN
  IF to_regclass('' || quote_ident(v_name)) IS NOT NULL THEN
    RETURN true;
  END IF;
  -- Two first appends of a month at once: one creates, the other finds it made.
  PERFORM pg_advisory_xact_lock(hashtext('headway_events_partition'));
  IF to_regclass('' || quote_ident(v_name)) IS NOT NULL THEN
    RETURN true;
  END IF;
  SELECT c.relowner::regrole::name INTO v_owner FROM pg_class c
   WHERE c.oid = to_regclass('events');
  -- Through the parent, whose rights are checked rather than the default partition's: with
  -- no partition for the month, pruning leaves the default one alone to read.
  IF EXISTS (SELECT 1 FROM events d
              WHERE d.stream_month >= v_month AND d.stream_month < (v_month + interval '1 month')::date) THEN
    RETURN false;
  END IF;
  BEGIN
    IF NOT p_wait THEN
      PERFORM set_config('lock_timeout', '100ms', true);
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
                   v_name, v_month, (v_month + interval '1 month')::date);
    EXECUTE format('CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON %I
                      FOR EACH STATEMENT EXECUTE FUNCTION headway_reject_change()', v_name);
    -- Retention drops a partition as the log's owner: a superuser migrating makes it the owner's.
    IF v_owner IS DISTINCT FROM current_user THEN
      EXECUTE format('ALTER TABLE %I OWNER TO %I', v_name, v_owner);
    END IF;
    PERFORM set_config('lock_timeout', v_lock_timeout, true);
  EXCEPTION WHEN lock_not_available OR check_violation OR duplicate_table THEN
    -- The subtransaction's rollback restores lock_timeout too.
    RETURN false;
  END;
  RETURN true;
END
$function$

CREATE OR REPLACE FUNCTION headway_notify_append()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
  PERFORM pg_notify('headway_events', TG_TABLE_SCHEMA);
  RETURN NULL;
END
$function$

CREATE OR REPLACE FUNCTION headway_reject_change()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
  RAISE EXCEPTION 'events are immutable: % on % is not allowed', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'HW003';
END
$function$

CREATE OR REPLACE FUNCTION headway_reject_stream_change()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
  RAISE EXCEPTION 'stream heads follow the log: % on % is not allowed', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'HW003';
END
$function$
