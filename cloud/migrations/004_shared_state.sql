-- What every worker must see the same: attempts counted against the rate limit, and the
-- reasons waiting for a photo a worker asked for (another worker may store the photo).
CREATE TABLE rate_hits (
    key TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);
CREATE INDEX rate_hits_by_key ON rate_hits (key, at_ms);
CREATE TABLE photo_reasons (
    site TEXT NOT NULL,
    camera TEXT NOT NULL,
    reason TEXT NOT NULL,
    added TEXT NOT NULL,
    PRIMARY KEY (site, camera, reason)
);
