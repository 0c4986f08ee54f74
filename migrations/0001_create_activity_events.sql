-- Events of every tenant, and one head row per tenant that hands out `seq`.
-- Every key and index leads with tenant_id: it is the distribution key when the
-- schema moves to a distributed PostgreSQL. Identifiers use the "C" collation: they
-- compare byte by byte, which is their meaning and keeps index upkeep cheap.

-- migrate:up
CREATE TABLE activity_tenants (
  tenant_id       text        COLLATE "C" PRIMARY KEY,
  -- the last seq handed out; inserts lock this row, so seq follows commit order
  last_seq        bigint      NOT NULL DEFAULT 0,
  -- created_at never goes backwards within a tenant, so a time window maps to a
  -- seq range and every page stays a keyset scan on seq
  last_created_at timestamptz NOT NULL DEFAULT '-infinity'
);

CREATE TABLE activity_events (
  tenant_id   text COLLATE "C" NOT NULL,
  seq         bigint      NOT NULL,
  id          uuid        NOT NULL,
  action      text COLLATE "C" NOT NULL,
  namespace   text COLLATE "C" NOT NULL GENERATED ALWAYS AS (split_part(action, '.', 1)) STORED,
  actor_type  text        NOT NULL,
  actor_id    text COLLATE "C",
  object_type text COLLATE "C",
  object_id   text COLLATE "C",
  status      text COLLATE "C" NOT NULL,
  source      text,
  request_id  text COLLATE "C",
  ip_hash     text,
  user_agent  text,
  metadata    jsonb       NOT NULL DEFAULT '{}',
  created_at  timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, seq),
  CONSTRAINT activity_events_id_key UNIQUE (tenant_id, id),
  CONSTRAINT activity_events_actor_type_check CHECK (actor_type IN ('user', 'service_account', 'system', 'api_key')),
  CONSTRAINT activity_events_status_check CHECK (status IN ('success', 'failure', 'pending'))
);

-- One index per filter of `query`, each ending in seq so that a filtered page is
-- read in order straight from the index.
CREATE INDEX activity_events_action_idx ON activity_events (tenant_id, action, seq);
CREATE INDEX activity_events_namespace_idx ON activity_events (tenant_id, namespace, seq);
CREATE INDEX activity_events_actor_idx ON activity_events (tenant_id, actor_id, seq) WHERE actor_id IS NOT NULL;
CREATE INDEX activity_events_object_type_idx ON activity_events (tenant_id, object_type, seq) WHERE object_type IS NOT NULL;
CREATE INDEX activity_events_object_id_idx ON activity_events (tenant_id, object_id, seq) WHERE object_id IS NOT NULL;
CREATE INDEX activity_events_request_idx ON activity_events (tenant_id, request_id, seq) WHERE request_id IS NOT NULL;
CREATE INDEX activity_events_status_idx ON activity_events (tenant_id, status, seq);
-- maps a time window to a seq range
CREATE INDEX activity_events_created_idx ON activity_events (tenant_id, created_at, seq);

-- migrate:down
-- A request for an ACCESS EXCLUSIVE lock queues every later query of the table behind
-- it: wait at most 2 s (less than ACTIVITY_LOCK_TIMEOUT's 5 s, so queued requests are
-- delayed, not failed), then give up with an error that says what happened.
SET LOCAL lock_timeout = '2s';
DO $$
BEGIN
  LOCK TABLE activity_tenants, activity_events IN ACCESS EXCLUSIVE MODE;
EXCEPTION WHEN lock_not_available THEN
  RAISE lock_not_available USING MESSAGE = format(
    '0001_create_activity_events waited %s to lock activity_tenants and activity_events, which another session holds, and gave up: nothing was rolled back; try again once that session is done',
    current_setting('lock_timeout'));
END
$$;
DROP TABLE activity_events;
DROP TABLE activity_tenants;

-- A run is one transaction: the migrations after this one get the session's own timeout.
SET LOCAL lock_timeout TO DEFAULT;
