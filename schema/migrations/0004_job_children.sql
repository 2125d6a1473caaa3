-- A job's children are the streams whose job.started names it as parent. Only job.started
-- rows enter this index, so it stays small, and "has this job children?" is one probe of
-- the log itself: always current, with no projection to wait for.
CREATE INDEX events_job_parent_idx
  ON events ((data ->> 'parentJobId'), stream_id) WHERE type = 'job.started';

-- Superseded by the index above: views look children up in the log, then read their states.
DROP INDEX projection_states_parent_idx;
