-- Live delivery and persisted projections (issue 4).

-- A wake-up for live readers. PostgreSQL folds identical notifications of one transaction
-- into one, so a statement trigger with a constant payload notifies once per transaction.
-- Readers treat it as a hint only: the gap-safe poll is the truth.
CREATE FUNCTION headway_notify_append() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('headway_events', current_schema());
  RETURN NULL;
END
$$;

CREATE TRIGGER events_notify
  AFTER INSERT ON events
  FOR EACH STATEMENT EXECUTE FUNCTION headway_notify_append();

-- One row per generation of a persisted projection. A rebuild folds the log into a new
-- 'building' generation while the 'active' one keeps serving, then switches in one
-- transaction. The cursor is the last event folded into the generation's states.
CREATE TABLE projection_checkpoints (
  projection     text        NOT NULL,
  generation     integer     NOT NULL CHECK (generation >= 1),
  code_version   integer     NOT NULL,
  status         text        NOT NULL CHECK (status IN ('building', 'active')),
  transaction_id xid8        NOT NULL DEFAULT '0',
  position       bigint      NOT NULL DEFAULT 0,
  events         bigint      NOT NULL DEFAULT 0,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (projection, generation)
);

CREATE UNIQUE INDEX projection_checkpoints_one_active
  ON projection_checkpoints (projection) WHERE status = 'active';
CREATE UNIQUE INDEX projection_checkpoints_one_building
  ON projection_checkpoints (projection) WHERE status = 'building';

-- Projection states by key (a job id), split into parts so that a change to one part
-- (a bucket of items) does not rewrite the rest. Part '' is the state without its items.
CREATE TABLE projection_states (
  projection text    NOT NULL,
  generation integer NOT NULL,
  key        text    NOT NULL,
  part       text    NOT NULL,
  value      jsonb   NOT NULL,
  PRIMARY KEY (projection, generation, key, part)
);

-- Cross-job views filter jobs by project and parent.
CREATE INDEX projection_states_project_idx
  ON projection_states (projection, generation, (value -> 'progress' ->> 'project')) WHERE part = '';
CREATE INDEX projection_states_parent_idx
  ON projection_states (projection, generation, (value -> 'progress' ->> 'parentJobId'))
  WHERE part = '' AND value -> 'progress' ->> 'parentJobId' IS NOT NULL;
