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
DROP TABLE activity_legal_holds;
DROP TABLE activity_retention_policies;
