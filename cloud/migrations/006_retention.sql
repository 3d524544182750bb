-- The retention rule (deployment.md, "Retention"): rows older than the operator's limits
-- are deleted by age across every site, a batch at a time, oldest first. Each table reads
-- an index on its time, so a purge finds its rows without reading the whole table (without
-- one, each batch would read the table from its start).
-- Images and clips count from when the cloud stored them (its own clock, not the panel's).
ALTER TABLE photos ADD COLUMN stored TEXT;
UPDATE photos SET stored = coalesce(ready, requested, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
CREATE INDEX events_by_age ON events (time);
CREATE INDEX telemetry_by_age ON telemetry (time);
CREATE INDEX photos_by_age ON photos (stored);
CREATE INDEX sessions_by_age ON sessions (created);
