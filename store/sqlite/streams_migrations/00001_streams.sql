-- Schema of the embedded event store (dir/streams.db), apart from the
-- key/value store's database. Times are integer unix nanoseconds (UTC);
-- stream ids compare in byte order (BINARY collation). Rowid tables, as in
-- the key/value schema.
--
-- Events are never updated or deleted. An append is one position of the
-- store-wide sequence (dense from 1, in commit order); its events share it
-- and are numbered by idx from 0. A stream's versions are dense from 0.

-- +goose Up

-- One row per stream ever appended to.
CREATE TABLE streams (
    id           INTEGER PRIMARY KEY,   -- the stream key id, referenced by stream_events.stream
    stream_id    TEXT    NOT NULL UNIQUE,
    last_version INTEGER NOT NULL       -- version of the stream's last event
);

CREATE TABLE stream_events (
    id        INTEGER PRIMARY KEY,
    position  INTEGER NOT NULL,         -- the append's store-wide position
    idx       INTEGER NOT NULL,         -- order within the append, from 0
    stream    INTEGER NOT NULL,         -- streams.id
    version   INTEGER NOT NULL,
    event_id  TEXT    NOT NULL UNIQUE,
    type      TEXT    NOT NULL,
    data      TEXT    NOT NULL,         -- JSON
    metadata  TEXT,                     -- JSON or NULL
    timestamp INTEGER NOT NULL,         -- commit time of the append
    UNIQUE (stream, version)
);

-- ReadAll and the position counter: every stream in append order.
CREATE INDEX stream_events_position ON stream_events (position, idx);

-- The latest snapshot of each stream (by version).
CREATE TABLE stream_snapshots (
    stream     INTEGER PRIMARY KEY,     -- streams.id
    version    INTEGER NOT NULL,
    state      TEXT    NOT NULL,        -- JSON
    created_at INTEGER NOT NULL
);

-- +goose Down
DROP TABLE stream_snapshots;
DROP INDEX stream_events_position;
DROP TABLE stream_events;
DROP TABLE streams;
