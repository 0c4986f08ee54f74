-- Sinks: where each tenant's events are delivered (a SIEM, a webhook), and how far.
-- A sink names one tenant or every tenant (tenant_id NULL). Its headers and its
-- signing secret are stored encrypted (AES-256-GCM under a key derived from
-- ACTIVITY_SECRET), never in clear. A cursor per sink and tenant is the last seq the
-- receiver acknowledged: delivery goes on from the seq after it, in order.

-- migrate:up
CREATE TABLE activity_sinks (
  sink_id         uuid        PRIMARY KEY,
  tenant_id       text        COLLATE "C",
  url             text        NOT NULL,
  payload         text        NOT NULL CHECK (payload IN ('ocsf', 'cloudevents', 'ndjson')),
  -- Only these actions (exact names, and prefixes ending in '.'); NULL: every event.
  actions         text[],
  prefixes        text[],
  -- {"nonce","sealed"} of the headers' JSON and of the signing secret.
  headers         jsonb,
  secret          jsonb       NOT NULL,
  state           text        NOT NULL DEFAULT 'active'
                              CHECK (state IN ('active', 'paused', 'failing', 'suspended')),
  created_at      timestamptz NOT NULL DEFAULT now(),
  -- Delivery: when to try next, and how it went.
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  attempts        integer     NOT NULL DEFAULT 0,
  failing_since   timestamptz,
  last_success_at timestamptz,
  last_error      text,
  last_error_at   timestamptz
);
CREATE INDEX activity_sinks_due ON activity_sinks (next_attempt_at) WHERE state IN ('active', 'failing');

CREATE TABLE activity_sink_cursors (
  sink_id             uuid        NOT NULL REFERENCES activity_sinks ON DELETE CASCADE,
  tenant_id           text        COLLATE "C" NOT NULL,
  -- Read through here: every seq up to it is delivered, purged or left out by the filter.
  delivered_seq       bigint      NOT NULL DEFAULT 0 CHECK (delivered_seq >= 0),
  -- The end of the last range the receiver acknowledged. Seqs past it that no POST has
  -- carried yet (all purged or left out) are counted below and reported in the next one.
  reported_seq        bigint      NOT NULL DEFAULT 0 CHECK (reported_seq <= delivered_seq),
  unreported_skipped  bigint      NOT NULL DEFAULT 0,
  unreported_filtered bigint      NOT NULL DEFAULT 0,
  -- The end of a range a receiver did not acknowledge: sent again as it was.
  retry_through       bigint,
  delivered_at        timestamptz,
  -- Events gone before they could be delivered (purged): counted, never silent.
  skipped             bigint      NOT NULL DEFAULT 0,
  PRIMARY KEY (sink_id, tenant_id)
);

-- migrate:down
SET LOCAL lock_timeout = '2s';
DO $$
BEGIN
  LOCK TABLE activity_sinks, activity_sink_cursors IN ACCESS EXCLUSIVE MODE;
EXCEPTION WHEN lock_not_available THEN
  RAISE lock_not_available USING MESSAGE = format(
    '0006_sinks waited %s to lock activity_sinks and activity_sink_cursors, which another session holds, and gave up: nothing was rolled back; try again once that session is done',
    current_setting('lock_timeout'));
END
$$;
DROP TABLE activity_sink_cursors;
DROP TABLE activity_sinks;
SET LOCAL lock_timeout TO DEFAULT;
