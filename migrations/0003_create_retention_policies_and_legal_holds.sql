-- Per-tenant retention, and legal holds. A tenant on hold is never purged, whatever
-- its policy; a tenant's policy overrides the default retention of `purge`. Both may
-- name a tenant that has no events yet.

-- migrate:up
CREATE TABLE activity_retention_policies (
  tenant_id      text        COLLATE "C" PRIMARY KEY,
  retention_days integer     NOT NULL CHECK (retention_days BETWEEN 1 AND 36500),
  updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE activity_legal_holds (
  tenant_id text        COLLATE "C" PRIMARY KEY,
  reason    text,
  placed_at timestamptz NOT NULL DEFAULT now()
);

-- migrate:down
-- A request for an ACCESS EXCLUSIVE lock queues every later query of the table behind
-- it: wait at most 2 s (less than ACTIVITY_LOCK_TIMEOUT's 5 s, so queued requests are
-- delayed, not failed), then give up with an error that says what happened.
SET LOCAL lock_timeout = '2s';
DO $$
BEGIN
  LOCK TABLE activity_retention_policies, activity_legal_holds IN ACCESS EXCLUSIVE MODE;
EXCEPTION WHEN lock_not_available THEN
  RAISE lock_not_available USING MESSAGE = format(
    '0003_create_retention_policies_and_legal_holds waited %s to lock activity_retention_policies and activity_legal_holds, which another session holds, and gave up: nothing was rolled back; try again once that session is done',
    current_setting('lock_timeout'));
END
$$;
-- A hold is a promise to keep a tenant's events: it is lifted on purpose, never dropped
-- with the schema (the check runs under the lock above, so none is placed meanwhile).
DO $$
DECLARE
  v_holds bigint;
BEGIN
  SELECT count(*) INTO v_holds FROM activity_legal_holds;
  IF v_holds > 0 THEN
    RAISE EXCEPTION USING MESSAGE = format(
      '%s tenant(s) are on legal hold: lift each hold (activity hold remove) before rolling back 0003_create_retention_policies_and_legal_holds',
      v_holds);
  END IF;
END
$$;
DROP TABLE activity_legal_holds;
DROP TABLE activity_retention_policies;

-- A run is one transaction: the migrations after this one get the session's own timeout.
SET LOCAL lock_timeout TO DEFAULT;
