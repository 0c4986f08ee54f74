-- activity_events becomes a table range-partitioned by month on created_at (UTC), so
-- that purge drops whole expired months instead of deleting them row by row. Every
-- existing row is copied over; `down` copies them back.
--
-- A unique key on a partitioned table must include the partition key, so
-- (tenant_id, id) can no longer be a unique constraint. Both keys are kept by the
-- append function below instead: it locks the tenant's head row, which hands out seq,
-- and only then looks up the ids the caller supplied. Every earlier writer of the
-- tenant has committed by the time it holds the lock, and each statement of a
-- PL/pgSQL function reads a fresh snapshot, so the lookup sees all of them.
--
-- A DEFAULT partition takes any row whose month has no partition yet, so an insert
-- never fails for lack of one. `migrate` and `purge` create the coming months ahead
-- (activity_ensure_partitions); creating a month moves its rows out of the default.
--
-- Needs a maintenance window on a big table: up and down each copy every event and
-- build every index in one transaction, under an ACCESS EXCLUSIVE lock on
-- activity_events from their first statement to the commit. Meanwhile every read and
-- write of the log waits, then fails with DB_TIMEOUT (503, exit 3); the copy takes
-- time in proportion to the table. See "Writing a migration" in docs/operations.md.

-- migrate:up
-- A request for an ACCESS EXCLUSIVE lock queues every later query of the table behind
-- it: wait at most 2 s (less than ACTIVITY_LOCK_TIMEOUT's 5 s, so queued requests are
-- delayed, not failed), then give up with an error that says what happened.
SET LOCAL lock_timeout = '2s';
DO $$
BEGIN
  LOCK TABLE activity_events IN ACCESS EXCLUSIVE MODE;
EXCEPTION WHEN lock_not_available THEN
  RAISE lock_not_available USING MESSAGE = format(
    '0002_partition_activity_events_by_month waited %s to lock activity_events, which another session holds, and gave up: nothing was applied; try again once that session is done',
    current_setting('lock_timeout'));
END
$$;

ALTER TABLE activity_events RENAME TO activity_events_unpartitioned;
ALTER TABLE activity_events_unpartitioned
  DROP CONSTRAINT activity_events_pkey,
  DROP CONSTRAINT activity_events_id_key;
DROP INDEX activity_events_action_idx, activity_events_namespace_idx, activity_events_actor_idx,
  activity_events_object_type_idx, activity_events_object_id_idx, activity_events_request_idx,
  activity_events_status_idx, activity_events_created_idx;

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
  -- seq alone is unique per tenant (the head row hands it out); the key must also
  -- hold the partition key
  PRIMARY KEY (tenant_id, seq, created_at),
  CONSTRAINT activity_events_actor_type_check CHECK (actor_type IN ('user', 'service_account', 'system', 'api_key')),
  CONSTRAINT activity_events_status_check CHECK (status IN ('success', 'failure', 'pending'))
) PARTITION BY RANGE (created_at);

-- the idempotency lookup of activity_append
CREATE INDEX activity_events_id_idx ON activity_events (tenant_id, id);
CREATE INDEX activity_events_action_idx ON activity_events (tenant_id, action, seq);
CREATE INDEX activity_events_namespace_idx ON activity_events (tenant_id, namespace, seq);
CREATE INDEX activity_events_actor_idx ON activity_events (tenant_id, actor_id, seq) WHERE actor_id IS NOT NULL;
CREATE INDEX activity_events_object_type_idx ON activity_events (tenant_id, object_type, seq) WHERE object_type IS NOT NULL;
CREATE INDEX activity_events_object_id_idx ON activity_events (tenant_id, object_id, seq) WHERE object_id IS NOT NULL;
CREATE INDEX activity_events_request_idx ON activity_events (tenant_id, request_id, seq) WHERE request_id IS NOT NULL;
CREATE INDEX activity_events_status_idx ON activity_events (tenant_id, status, seq);
CREATE INDEX activity_events_created_idx ON activity_events (tenant_id, created_at, seq);

CREATE TABLE activity_events_default PARTITION OF activity_events DEFAULT;

-- The partition of the UTC month holding p_time, named activity_events_yYYYYmMM;
-- created if missing (true), after moving that month's rows out of the default.
CREATE FUNCTION activity_ensure_partition(p_time timestamptz) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  v_month timestamp := date_trunc('month', p_time AT TIME ZONE 'UTC');
  v_from timestamptz := v_month AT TIME ZONE 'UTC';
  v_to timestamptz := (v_month + interval '1 month') AT TIME ZONE 'UTC';
  v_name text := 'activity_events_' || to_char(v_month, '"y"YYYY"m"MM');
  v_create text;
BEGIN
  IF to_regclass(v_name) IS NOT NULL THEN
    RETURN false;
  END IF;
  -- Self-conflicting and blocks inserts into the default only: concurrent callers
  -- take turns, and no row can land in the default between the move and the create.
  LOCK TABLE activity_events_default IN SHARE ROW EXCLUSIVE MODE;
  IF to_regclass(v_name) IS NOT NULL THEN
    RETURN false;
  END IF;
  v_create := format('CREATE TABLE %I PARTITION OF activity_events FOR VALUES FROM (%L) TO (%L)',
    v_name, v_from, v_to);
  IF EXISTS (SELECT 1 FROM activity_events_default WHERE created_at >= v_from AND created_at < v_to) THEN
    CREATE TEMP TABLE activity_events_moving ON COMMIT DROP AS
      SELECT tenant_id, seq, id, action, actor_type, actor_id, object_type, object_id, status, source,
        request_id, ip_hash, user_agent, metadata, created_at
      FROM activity_events_default WHERE created_at >= v_from AND created_at < v_to;
    DELETE FROM activity_events_default WHERE created_at >= v_from AND created_at < v_to;
    EXECUTE v_create;
    INSERT INTO activity_events (tenant_id, seq, id, action, actor_type, actor_id, object_type, object_id,
        status, source, request_id, ip_hash, user_agent, metadata, created_at)
      SELECT * FROM activity_events_moving;
    DROP TABLE activity_events_moving;
  ELSE
    EXECUTE v_create;
  END IF;
  RETURN true;
END;
$$;

-- Every monthly partition from p_from's month to p_to's, inclusive; returns how many
-- were created. Idempotent.
CREATE FUNCTION activity_ensure_partitions(p_from timestamptz, p_to timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_month timestamp := date_trunc('month', p_from AT TIME ZONE 'UTC');
  v_created integer := 0;
BEGIN
  WHILE v_month <= p_to AT TIME ZONE 'UTC' LOOP
    IF activity_ensure_partition(v_month AT TIME ZONE 'UTC') THEN
      v_created := v_created + 1;
    END IF;
    v_month := v_month + interval '1 month';
  END LOOP;
  RETURN v_created;
END;
$$;

-- Appends events of one tenant in one call (one round trip): lock the head row, look
-- up the supplied ids (p_check_ids) and return those stored as duplicates (with the
-- stored row, which may differ from the input), insert
-- the others with the next seqs in input order, advance the head, and NOTIFY
-- p_notify_channel (when given) with [tenant, last seq], delivered at commit.
-- created_at never runs backwards within a tenant: it is the later of p_created_at
-- and the tenant's latest.
CREATE FUNCTION activity_append(p_tenant_id text, p_events jsonb, p_created_at timestamptz,
    p_check_ids uuid[], p_notify_channel text)
  RETURNS TABLE (event_id uuid, event_seq bigint, event_created_at timestamptz, duplicate boolean, stored jsonb)
LANGUAGE plpgsql AS $$
DECLARE
  v_last_seq bigint;
  v_created_at timestamptz;
  v_duplicates uuid[] := '{}';
  v_inserted bigint;
BEGIN
  SELECT t.last_seq, greatest(t.last_created_at, p_created_at) INTO v_last_seq, v_created_at
    FROM activity_tenants t WHERE t.tenant_id = p_tenant_id FOR UPDATE;
  IF NOT FOUND THEN
    INSERT INTO activity_tenants (tenant_id) VALUES (p_tenant_id) ON CONFLICT DO NOTHING;
    SELECT t.last_seq, greatest(t.last_created_at, p_created_at) INTO v_last_seq, v_created_at
      FROM activity_tenants t WHERE t.tenant_id = p_tenant_id FOR UPDATE;
  END IF;

  IF cardinality(p_check_ids) > 0 THEN
    FOR event_id, event_seq, event_created_at, stored IN
      SELECT e.id, e.seq, e.created_at, to_jsonb(e) FROM activity_events e
      WHERE e.tenant_id = p_tenant_id AND e.id = ANY (p_check_ids)
    LOOP
      v_duplicates := v_duplicates || event_id;
      duplicate := true;
      RETURN NEXT;
    END LOOP;
  END IF;

  RETURN QUERY
    WITH inserted AS (
      INSERT INTO activity_events (tenant_id, seq, id, action, actor_type, actor_id, object_type, object_id,
          status, source, request_id, ip_hash, user_agent, metadata, created_at)
        SELECT p_tenant_id, v_last_seq + row_number() OVER (ORDER BY i.n), i.id, i.action, i.actor_type,
          i.actor_id, i.object_type, i.object_id, i.status, i.source, i.request_id, i.ip_hash, i.user_agent,
          i.metadata, v_created_at
        FROM jsonb_to_recordset(p_events) AS i(n int, id uuid, action text, actor_type text, actor_id text,
          object_type text, object_id text, status text, source text, request_id text, ip_hash text,
          user_agent text, metadata jsonb)
        WHERE i.id <> ALL (v_duplicates)
        RETURNING activity_events.id, activity_events.seq, activity_events.created_at
    )
    SELECT inserted.id, inserted.seq, inserted.created_at, false, NULL::jsonb FROM inserted;
  GET DIAGNOSTICS v_inserted = ROW_COUNT;

  IF v_inserted > 0 THEN
    UPDATE activity_tenants SET last_seq = v_last_seq + v_inserted, last_created_at = v_created_at
      WHERE tenant_id = p_tenant_id;
    IF p_notify_channel IS NOT NULL THEN
      PERFORM pg_notify(p_notify_channel, json_build_array(p_tenant_id, v_last_seq + v_inserted)::text);
    END IF;
  END IF;
END;
$$;

SELECT activity_ensure_partitions(
  coalesce((SELECT min(created_at) FROM activity_events_unpartitioned), now()),
  greatest((SELECT max(created_at) FROM activity_events_unpartitioned), now() + interval '3 months'));

INSERT INTO activity_events (tenant_id, seq, id, action, actor_type, actor_id, object_type, object_id,
    status, source, request_id, ip_hash, user_agent, metadata, created_at)
  SELECT tenant_id, seq, id, action, actor_type, actor_id, object_type, object_id, status, source,
    request_id, ip_hash, user_agent, metadata, created_at
  FROM activity_events_unpartitioned;
DROP TABLE activity_events_unpartitioned;

-- A run is one transaction: the migrations after this one get the session's own timeout.
SET LOCAL lock_timeout TO DEFAULT;

-- migrate:down
-- A request for an ACCESS EXCLUSIVE lock queues every later query of the table behind
-- it: wait at most 2 s (less than ACTIVITY_LOCK_TIMEOUT's 5 s, so queued requests are
-- delayed, not failed), then give up with an error that says what happened.
SET LOCAL lock_timeout = '2s';
DO $$
BEGIN
  LOCK TABLE activity_events IN ACCESS EXCLUSIVE MODE;
EXCEPTION WHEN lock_not_available THEN
  RAISE lock_not_available USING MESSAGE = format(
    '0002_partition_activity_events_by_month waited %s to lock activity_events, which another session holds, and gave up: nothing was rolled back; try again once that session is done',
    current_setting('lock_timeout'));
END
$$;

DROP FUNCTION activity_append(text, jsonb, timestamptz, uuid[], text);
DROP FUNCTION activity_ensure_partitions(timestamptz, timestamptz);
DROP FUNCTION activity_ensure_partition(timestamptz);

ALTER TABLE activity_events RENAME TO activity_events_partitioned;
-- frees the index names; each partition's indexes go with their parent's
ALTER TABLE activity_events_partitioned DROP CONSTRAINT activity_events_pkey;
DROP INDEX activity_events_id_idx, activity_events_action_idx, activity_events_namespace_idx,
  activity_events_actor_idx, activity_events_object_type_idx, activity_events_object_id_idx,
  activity_events_request_idx, activity_events_status_idx, activity_events_created_idx;

-- as created by 0001
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

INSERT INTO activity_events (tenant_id, seq, id, action, actor_type, actor_id, object_type, object_id,
    status, source, request_id, ip_hash, user_agent, metadata, created_at)
  SELECT tenant_id, seq, id, action, actor_type, actor_id, object_type, object_id, status, source,
    request_id, ip_hash, user_agent, metadata, created_at
  FROM activity_events_partitioned;
DROP TABLE activity_events_partitioned;

CREATE INDEX activity_events_action_idx ON activity_events (tenant_id, action, seq);
CREATE INDEX activity_events_namespace_idx ON activity_events (tenant_id, namespace, seq);
CREATE INDEX activity_events_actor_idx ON activity_events (tenant_id, actor_id, seq) WHERE actor_id IS NOT NULL;
CREATE INDEX activity_events_object_type_idx ON activity_events (tenant_id, object_type, seq) WHERE object_type IS NOT NULL;
CREATE INDEX activity_events_object_id_idx ON activity_events (tenant_id, object_id, seq) WHERE object_id IS NOT NULL;
CREATE INDEX activity_events_request_idx ON activity_events (tenant_id, request_id, seq) WHERE request_id IS NOT NULL;
CREATE INDEX activity_events_status_idx ON activity_events (tenant_id, status, seq);
CREATE INDEX activity_events_created_idx ON activity_events (tenant_id, created_at, seq);

-- A run is one transaction: the migrations after this one get the session's own timeout.
SET LOCAL lock_timeout TO DEFAULT;
