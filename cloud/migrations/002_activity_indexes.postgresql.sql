-- PostgreSQL's version of 002_activity_indexes.sql.
-- The activity page at scale: filters use an index each, and the filter lists
-- (users and tags seen) are kept as they arrive instead of scanning every event.
CREATE INDEX events_by_user ON events (site, "user", time DESC, seq DESC);
CREATE INDEX events_by_tag ON events (site, tag, time DESC, seq DESC);
CREATE INDEX events_by_type ON events (site, type, time DESC, seq DESC);
CREATE TABLE event_names (
    site TEXT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (site, kind, value)
);
INSERT INTO event_names SELECT DISTINCT site, 'user', "user" FROM events WHERE "user" IS NOT NULL
    ON CONFLICT DO NOTHING;
INSERT INTO event_names SELECT DISTINCT site, 'tag', tag FROM events WHERE tag IS NOT NULL
    ON CONFLICT DO NOTHING;
