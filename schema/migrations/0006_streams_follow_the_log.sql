-- A stream's row holds its head version, which headway_append reads to number the next
-- events: a head that disagrees with the log makes every later append to that stream fail.
-- So streams is guarded like events, in every set-up (one role, PGlite included): rows are
-- never deleted nor the table truncated, and a row written by INSERT or UPDATE must name
-- the highest version of its stream in events (0 when it has none). The check runs after
-- each row, at the end of the statement, so it sees the events that headway_append inserts
-- in the same statement. It costs one probe of the (stream_id, version) index per stream
-- and append. Triggers stop accidents and the app role, not an owner who disables them.

CREATE FUNCTION headway_reject_stream_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'stream heads follow the log: % on % is not allowed', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'HW003';
END
$$;

CREATE TRIGGER streams_no_delete
  BEFORE DELETE ON streams
  FOR EACH ROW EXECUTE FUNCTION headway_reject_stream_change();

CREATE TRIGGER streams_no_truncate
  BEFORE TRUNCATE ON streams
  FOR EACH STATEMENT EXECUTE FUNCTION headway_reject_stream_change();

-- Called from inside headway_append, whose search_path leaves the ledger's schema out: the
-- body names events with the schema the migration runs in.
DO $migration$
BEGIN
  EXECUTE replace($function$
CREATE FUNCTION headway_check_stream_head() RETURNS trigger
LANGUAGE plpgsql AS $body$
DECLARE
  v_head bigint;
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.stream_id IS DISTINCT FROM OLD.stream_id THEN
    RAISE EXCEPTION 'stream heads follow the log: stream % cannot be renamed to %',
                    OLD.stream_id, NEW.stream_id
      USING ERRCODE = 'HW004';
  END IF;
  SELECT coalesce(max(e.version), 0) INTO v_head
    FROM @schema@.events e WHERE e.stream_id = NEW.stream_id;
  IF NEW.version IS DISTINCT FROM v_head THEN
    RAISE EXCEPTION 'stream heads follow the log: stream % has events up to version %, so its head must be %, received %',
                    NEW.stream_id, v_head, v_head, NEW.version
      USING ERRCODE = 'HW004',
            HINT = 'streams.version is kept by headway_append; append events instead of writing it';
  END IF;
  RETURN NULL;
END
$body$
$function$, '@schema@', quote_ident(current_schema()));
END
$migration$;

CREATE TRIGGER streams_head_matches_log
  AFTER INSERT OR UPDATE ON streams
  FOR EACH ROW EXECUTE FUNCTION headway_check_stream_head();
