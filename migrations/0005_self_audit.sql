-- The log accounts for itself (activity.* events). Each purge record now counts what
-- its run deleted, keeps the id its `activity.events.purged` event is recorded under
-- (random, chosen before the event is written, so no caller can take it first), and
-- says whether that event was recorded: a run killed before recording it leaves the
-- record unrecorded, and the next run that purges the tenant records it. One row counts every event purged, for serve's
-- activity_events_purged_total whichever process purged them.

-- A page without an action filter leaves the tool's own events out; a tenant read
-- often holds many of them at its newest seqs, so such pages read this index (the
-- events that are not the tool's own, by seq) rather than step over them. Built like
-- any index: writes to activity_events wait while it is built (see docs/operations.md).

-- migrate:up
CREATE INDEX activity_events_unreserved_idx ON activity_events (tenant_id, seq) WHERE namespace <> 'activity';

ALTER TABLE activity_purges
  ADD COLUMN deleted  bigint  NOT NULL DEFAULT 0,
  ADD COLUMN event_id uuid,
  ADD COLUMN recorded boolean NOT NULL DEFAULT false;
-- Purges before this migration left no event, and none is written for them now.
UPDATE activity_purges SET recorded = true;
CREATE INDEX activity_purges_unrecorded ON activity_purges (tenant_id) WHERE NOT recorded;

CREATE TABLE activity_purge_totals (
  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  events   bigint  NOT NULL
);
INSERT INTO activity_purge_totals (events) VALUES (0);

-- migrate:down
SET LOCAL lock_timeout = '2s';
DO $$
BEGIN
  LOCK TABLE activity_purges, activity_events IN ACCESS EXCLUSIVE MODE;
EXCEPTION WHEN lock_not_available THEN
  RAISE lock_not_available USING MESSAGE = format(
    '0005_self_audit waited %s to lock activity_purges and activity_events, which another session holds, and gave up: nothing was rolled back; try again once that session is done',
    current_setting('lock_timeout'));
END
$$;
DROP INDEX activity_events_unreserved_idx;
DROP TABLE activity_purge_totals;
DROP INDEX activity_purges_unrecorded;
ALTER TABLE activity_purges DROP COLUMN recorded, DROP COLUMN event_id, DROP COLUMN deleted;
SET LOCAL lock_timeout TO DEFAULT;
