-- PostgreSQL's version of 006_retention.sql.
-- The retention rule (deployment.md, "Retention"): rows older than the operator's limits
-- are deleted by age across every site, a batch at a time, oldest first.
-- B-tree indexes on each table's time, not BRIN: a BRIN range's minimum and maximum only
-- ever widen, so once the purge frees the oldest pages and new rows reuse them every range
-- spans a year and the BRIN matches the whole table; a B-tree hands the purge its oldest
-- rows in order, and new times append at its right edge.
-- Images and clips count from when the cloud stored them (its own clock, not the panel's).
ALTER TABLE photos ADD COLUMN stored TEXT;
UPDATE photos SET stored = coalesce(
    ready, requested, to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'));
CREATE INDEX events_by_age ON events (time);
CREATE INDEX telemetry_by_age ON telemetry (time);
CREATE INDEX photos_by_age ON photos (stored);
CREATE INDEX sessions_by_age ON sessions (created);
