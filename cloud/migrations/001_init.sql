-- The customer area's store: accounts, sessions and what the cloud API of section 5 delivered.
CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    mobile TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE memberships (
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    number TEXT NOT NULL,
    panel_user TEXT NOT NULL,
    PRIMARY KEY (account_id, number)
);
-- Wrong passwords in a row, kept per e-mail whether or not it has an account.
CREATE TABLE login_failures (
    email TEXT PRIMARY KEY,
    count INTEGER NOT NULL
);
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    kind TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE events (
    site TEXT NOT NULL,
    panel TEXT NOT NULL,
    seq INTEGER NOT NULL,
    time TEXT NOT NULL,
    type TEXT NOT NULL,
    mode TEXT,
    user TEXT,
    method TEXT NOT NULL,
    zone TEXT,
    tag TEXT,
    photo TEXT,
    detail TEXT,
    body TEXT NOT NULL,
    PRIMARY KEY (site, panel, seq)
);
CREATE INDEX events_by_time ON events (site, time DESC, seq DESC);
CREATE TABLE panel_state (
    site TEXT NOT NULL,
    panel TEXT NOT NULL,
    state TEXT,
    availability TEXT,
    updated TEXT NOT NULL,
    PRIMARY KEY (site, panel)
);
CREATE TABLE telemetry (
    site TEXT NOT NULL,
    panel TEXT NOT NULL,
    time TEXT NOT NULL,
    temperature REAL,
    humidity REAL
);
CREATE INDEX telemetry_by_time ON telemetry (site, time);
CREATE TABLE photos (
    site TEXT NOT NULL,
    panel TEXT NOT NULL,
    photo_id TEXT NOT NULL,
    camera TEXT,
    user TEXT,
    method TEXT,
    requested TEXT,
    ready TEXT,
    jpeg BLOB,
    reason TEXT,
    PRIMARY KEY (site, panel, photo_id)
);
CREATE TABLE notify (
    account_id INTEGER PRIMARY KEY REFERENCES accounts(id),
    on_alarm INTEGER NOT NULL DEFAULT 1,
    on_photo INTEGER NOT NULL DEFAULT 0,
    on_arm INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE tag_names (
    number TEXT NOT NULL,
    uid TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (number, uid)
);
CREATE TABLE stolen_tags (
    number TEXT NOT NULL,
    uid TEXT NOT NULL,
    reported TEXT NOT NULL,
    account_id INTEGER NOT NULL,
    PRIMARY KEY (number, uid)
);
