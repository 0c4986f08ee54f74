-- Each tenant's events become the leaves of an RFC 9162 Merkle tree (leaf index
-- seq - 1). See "Integrity" in DESIGN.md and docs/integrity.md.
--
-- The statement that hands out seq stores the event's leaf hash in its row
-- (`leaf_hash`), so that an event is in its tree exactly when it is committed: the
-- tree is a function of the leaves. Its inner nodes are not computed there (extending
-- the tree on every append cost writers a fifth of their rate); the sealer
-- (store/integrity/seal.ts), run by `checkpoint`, computes them for the leaves since
-- the tenant's sealed size (`activity_tree_seals`, locked by the sealer alone, never
-- the head row) and keeps them in blocks of 64 seqs (`activity_tree_blocks`): for each
-- seq that is a multiple of 4, the hash of every perfect subtree of 4 leaves or more it
-- completes (the subtree of leaves (seq - 2^L, seq] for each L from 2 up to the number
-- of trailing zero bits of seq), end to end in seq order. Every node of the tree is
-- thus kept once, except the pairs of leaves, which are one hash of the two leaf
-- hashes: 32 bytes per event in its row and 16 in its block on average. A proof reads
-- the O(log n) rows and blocks whose hashes it needs, never a whole tenant.
--
-- Events stored before this migration have no leaf hash until `activity migrate`
-- hashes them; until then their tenant's tree cannot be sealed past them and
-- `verify` names the range. Every step here changes metadata only: adding columns
-- without a default to fill in rewrites no table.
--
-- Times are stored in whole milliseconds from now on, the precision the API returns,
-- so that a leaf recomputed from a returned event is the leaf the database hashed.

-- migrate:up
SET LOCAL lock_timeout = '2s';
DO $$
BEGIN
  LOCK TABLE activity_tenants, activity_events IN ACCESS EXCLUSIVE MODE;
EXCEPTION WHEN lock_not_available THEN
  RAISE lock_not_available USING MESSAGE = format(
    '0004_tenant_merkle_trees waited %s to lock activity_tenants and activity_events, which another session holds, and gave up: nothing was applied; try again once that session is done',
    current_setting('lock_timeout'));
END
$$;

ALTER TABLE activity_events ADD COLUMN leaf_hash bytea;

-- The events stored before this migration, by tenant: seqs up to through_seq, with no
-- leaf hash until `activity migrate` hashes them (store/integrity/backfill.ts) and
-- deletes the tenant's row. Filled under this migration's lock: no append in between.
CREATE TABLE activity_tree_backfill (
  tenant_id   text   COLLATE "C" PRIMARY KEY,
  through_seq bigint NOT NULL
);
INSERT INTO activity_tree_backfill (tenant_id, through_seq)
  SELECT tenant_id, last_seq FROM activity_tenants WHERE last_seq > 0;

-- How far the sealer has computed each tenant's tree: its blocks hold the inner nodes
-- of the tree of the first `sealed_size` leaves, the last of which was `sealed_leaf`
-- (a row replaced since, as a rollback of the head row allows, is not sealed over).
CREATE TABLE activity_tree_seals (
  tenant_id   text   COLLATE "C" PRIMARY KEY,
  sealed_size bigint NOT NULL,
  sealed_leaf bytea
);

-- The inner nodes of each tenant's tree, by block of 64 seqs (block b: seqs
-- 64b + 1 .. 64b + 64), about 1 KB each, as the header says; the block being filled
-- is rewritten whole by the sealer. Never compressed: hashes do not compress.
CREATE TABLE activity_tree_blocks (
  tenant_id text   COLLATE "C" NOT NULL,
  block     bigint NOT NULL,
  hashes    bytea  NOT NULL,
  PRIMARY KEY (tenant_id, block)
);
ALTER TABLE activity_tree_blocks ALTER COLUMN hashes SET STORAGE EXTERNAL;

-- Signed checkpoints (C2SP tlog-checkpoint notes), one per tenant and tree size.
CREATE TABLE activity_checkpoints (
  tenant_id text        COLLATE "C" NOT NULL,
  tree_size bigint      NOT NULL,
  root_hash bytea       NOT NULL,
  note      text        NOT NULL,
  signed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, tree_size)
);

-- What purge keeps of the tree (DESIGN: purged events keep their hashes): the leaf
-- hashes of the purged rows, each row of this table a run of seqs (within one run of
-- 1024) and their leaf hashes end to end, in seq order. Their blocks stay.
CREATE TABLE activity_tree_archive (
  tenant_id   text   COLLATE "C" NOT NULL,
  from_seq    bigint NOT NULL,
  through_seq bigint NOT NULL,
  hashes      bytea  NOT NULL,
  PRIMARY KEY (tenant_id, from_seq)
);

-- Each purge run's record per tenant: which seqs it removed, by which rule, and when.
CREATE TABLE activity_purges (
  tenant_id   text        COLLATE "C" NOT NULL,
  purged_at   timestamptz NOT NULL,
  from_seq    bigint      NOT NULL,
  through_seq bigint      NOT NULL,
  rule        text        NOT NULL,
  cutoff      timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, purged_at)
);

-- activity_ensure_partition of 0002, moving each row's leaf hash with it.
CREATE OR REPLACE FUNCTION activity_ensure_partition(p_time timestamptz) RETURNS boolean
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
        request_id, ip_hash, user_agent, metadata, created_at, leaf_hash
      FROM activity_events_default WHERE created_at >= v_from AND created_at < v_to;
    DELETE FROM activity_events_default WHERE created_at >= v_from AND created_at < v_to;
    EXECUTE v_create;
    INSERT INTO activity_events (tenant_id, seq, id, action, actor_type, actor_id, object_type, object_id,
        status, source, request_id, ip_hash, user_agent, metadata, created_at, leaf_hash)
      SELECT * FROM activity_events_moving;
    DROP TABLE activity_events_moving;
  ELSE
    EXECUTE v_create;
  END IF;
  RETURN true;
END;
$$;

-- The time of a tenant's next event: never before its latest, in whole milliseconds
-- (rounded up, so never before a latest stored with microseconds).
CREATE FUNCTION activity_next_time(p_latest timestamptz, p_now timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
RETURN date_trunc('milliseconds', greatest(p_latest, p_now) + interval '999 microseconds');

-- RFC 9162 leaf hash of an event's leaf (v1): H(0x00 ‖ digest ‖ seq ‖ t), digest
-- being SHA-256 of the event's canonical JSON (computed by the writer), seq 8 bytes
-- and t (microseconds since the epoch) 8 bytes, big-endian. STABLE, as extract() on a
-- timestamptz is: declared IMMUTABLE, it was never inlined, and planning its body
-- again at every call cost a one-event append 25 µs of its 160 in the database.
CREATE FUNCTION activity_leaf_hash(p_digest bytea, p_seq bigint, p_created_at timestamptz) RETURNS bytea
LANGUAGE sql STABLE STRICT PARALLEL SAFE
RETURN sha256('\x00'::bytea || p_digest || int8send(p_seq)
  || int8send((extract(epoch FROM p_created_at) * 1000000)::bigint));

-- activity_append of 0002 (the append that looks up the ids it is given), now with
-- each event's digest (hex, in its `digest` key) and its leaf hash stored.
CREATE OR REPLACE FUNCTION activity_append(p_tenant_id text, p_events jsonb, p_created_at timestamptz,
    p_check_ids uuid[], p_notify_channel text)
  RETURNS TABLE (event_id uuid, event_seq bigint, event_created_at timestamptz, duplicate boolean, stored jsonb)
LANGUAGE plpgsql AS $$
DECLARE
  v_last_seq bigint;
  v_created_at timestamptz;
  v_duplicates uuid[] := '{}';
  v_inserted bigint;
BEGIN
  INSERT INTO activity_tenants (tenant_id) VALUES (p_tenant_id) ON CONFLICT DO NOTHING;
  SELECT t.last_seq, activity_next_time(t.last_created_at, p_created_at)
    INTO v_last_seq, v_created_at
    FROM activity_tenants t WHERE t.tenant_id = p_tenant_id FOR UPDATE;

  IF cardinality(p_check_ids) > 0 THEN
    FOR event_id, event_seq, event_created_at, stored IN
      SELECT e.id, e.seq, e.created_at, to_jsonb(e) - 'leaf_hash' FROM activity_events e
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
          status, source, request_id, ip_hash, user_agent, metadata, created_at, leaf_hash)
        SELECT p_tenant_id, v_last_seq + i.position, i.id, i.action, i.actor_type, i.actor_id, i.object_type,
          i.object_id, i.status, i.source, i.request_id, i.ip_hash, i.user_agent, i.metadata, v_created_at,
          activity_leaf_hash(decode(i.digest, 'hex'), v_last_seq + i.position, v_created_at)
        FROM (
          SELECT row_number() OVER (ORDER BY j.n) AS position, j.*
          FROM jsonb_to_recordset(p_events) AS j(n int, id uuid, action text, actor_type text, actor_id text,
            object_type text, object_id text, status text, source text, request_id text, ip_hash text,
            user_agent text, metadata jsonb, digest text)
          WHERE j.id <> ALL (v_duplicates)
        ) i
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

SET LOCAL lock_timeout TO DEFAULT;

-- migrate:down
SET LOCAL lock_timeout = '2s';
DO $$
BEGIN
  LOCK TABLE activity_tenants, activity_events IN ACCESS EXCLUSIVE MODE;
EXCEPTION WHEN lock_not_available THEN
  RAISE lock_not_available USING MESSAGE = format(
    '0004_tenant_merkle_trees waited %s to lock activity_tenants and activity_events, which another session holds, and gave up: nothing was rolled back; try again once that session is done',
    current_setting('lock_timeout'));
END
$$;

-- activity_append as 0002 made it
CREATE OR REPLACE FUNCTION activity_append(p_tenant_id text, p_events jsonb, p_created_at timestamptz,
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

-- activity_ensure_partition as 0002 made it
CREATE OR REPLACE FUNCTION activity_ensure_partition(p_time timestamptz) RETURNS boolean
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


DROP FUNCTION activity_leaf_hash(bytea, bigint, timestamptz);
DROP FUNCTION activity_next_time(timestamptz, timestamptz);
DROP TABLE activity_purges;
DROP TABLE activity_tree_archive;
DROP TABLE activity_tree_blocks;
DROP TABLE activity_tree_seals;
DROP TABLE activity_tree_backfill;
DROP TABLE activity_checkpoints;
ALTER TABLE activity_events DROP COLUMN leaf_hash;

SET LOCAL lock_timeout TO DEFAULT;
