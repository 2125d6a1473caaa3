-- Webhooks, delivered from the log (docs/alerts.md). A subscription reads the log from its
-- own checkpoint, like a persisted projection: the deliveries an event calls for are inserted
-- and the checkpoint moved in one transaction, so each is enqueued exactly once; sending is
-- then at least once, each delivery keeping a stable id for the receiver to dedupe.

CREATE TABLE webhooks (
  webhook_id     text        PRIMARY KEY,
  url            text        NOT NULL,
  -- The HMAC key of Headway-Signature; the receiver holds the same.
  secret         text        NOT NULL,
  -- Filters: null matches every project, kind or job.
  project        text,
  kind           text,
  job_id         text,
  -- finished, failed, cancelled, stalled, recovered, at_risk, late, failure_rate.
  conditions     text[]      NOT NULL,
  description    text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  -- Removed subscriptions are kept with their deliveries for audit, and deliver no more.
  removed_at     timestamptz,
  -- The log cursor of the last event this subscription has looked at.
  transaction_id xid8        NOT NULL,
  position       bigint      NOT NULL
);

CREATE TABLE webhook_deliveries (
  delivery_id     uuid        PRIMARY KEY,
  webhook_id      text        NOT NULL REFERENCES webhooks (webhook_id),
  job_id          text        NOT NULL,
  condition       text        NOT NULL,
  -- The event that called for it (position 0 for a test delivery).
  event_position  bigint      NOT NULL,
  -- The JSON body sent, fixed when enqueued so every attempt sends the same bytes.
  payload         jsonb       NOT NULL,
  status          text        NOT NULL DEFAULT 'pending'
                              CHECK (status IN ('pending', 'delivered', 'dead')),
  attempts        integer     NOT NULL DEFAULT 0,
  -- Each attempt: when, the HTTP status (or null), the error, how long it took; bounded by
  -- the attempt limit.
  attempt_log     jsonb       NOT NULL DEFAULT '[]',
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  created_at      timestamptz NOT NULL DEFAULT now(),
  delivered_at    timestamptz
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
  WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, created_at DESC);
-- One job's deliveries to one receiver go in order: the earliest pending one first.
CREATE INDEX webhook_deliveries_pending_by_job ON webhook_deliveries (webhook_id, job_id, event_position)
  WHERE status = 'pending';
