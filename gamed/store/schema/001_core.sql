-- Core tables shared by every game: accounts, sessions, ratings, matches, friends.
-- Tokens: $SERIAL_PK (auto-increment integer key), $REAL (double precision).

CREATE TABLE accounts (
    id $SERIAL_PK,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    password_hash TEXT,
    is_guest INTEGER NOT NULL DEFAULT 0,
    banned INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at $REAL NOT NULL,
    expires_at $REAL NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX sessions_account ON sessions (account_id);

CREATE TABLE ratings (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    game TEXT NOT NULL,
    rating $REAL NOT NULL,
    wins INTEGER NOT NULL DEFAULT 0,
    losses INTEGER NOT NULL DEFAULT 0,
    draws INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, game)
);
CREATE INDEX ratings_leaderboard ON ratings (game, rating DESC, account_id);

CREATE TABLE matches (
    id $SERIAL_PK,
    game TEXT NOT NULL,
    started_at TEXT,
    ended_at TEXT NOT NULL,
    reason TEXT NOT NULL,
    ranked INTEGER NOT NULL,
    details TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX matches_game_time ON matches (game, id DESC);

CREATE TABLE match_players (
    match_id INTEGER NOT NULL REFERENCES matches(id) ON DELETE CASCADE,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    seat INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    score $REAL NOT NULL DEFAULT 0,
    rating_before $REAL,
    rating_after $REAL,
    stats TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (match_id, account_id)
);
CREATE INDEX match_players_account ON match_players (account_id, match_id DESC);

CREATE TABLE friends (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    friend_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (account_id, friend_id)
);
CREATE INDEX friends_reverse ON friends (friend_id);
