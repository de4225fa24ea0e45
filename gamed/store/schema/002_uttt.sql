-- uttt: open and finished ultimate tic-tac-toe matches, their moves and turn state.
-- A match row holds the current position (81 marks, last move) so loading needs no
-- replay; uttt_moves is the append-only log of every move. A finished match points at
-- the shared `matches` row that holds its result and rating changes.

CREATE TABLE uttt_matches (
    id $SERIAL_PK,
    player_a INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    player_b INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    ranked INTEGER NOT NULL,
    board TEXT NOT NULL,
    last_move TEXT,
    moves INTEGER NOT NULL DEFAULT 0,
    is_open INTEGER NOT NULL DEFAULT 1,
    winner INTEGER NOT NULL DEFAULT 0,
    is_draw INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    created_at $REAL NOT NULL,
    last_move_at $REAL NOT NULL,
    finished_at $REAL,
    result_id INTEGER REFERENCES matches(id) ON DELETE SET NULL,
    seen_a INTEGER NOT NULL DEFAULT 0,
    seen_b INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX uttt_matches_open ON uttt_matches (is_open, last_move_at);
CREATE INDEX uttt_matches_player_a ON uttt_matches (player_a, is_open);
CREATE INDEX uttt_matches_player_b ON uttt_matches (player_b, is_open);

CREATE TABLE uttt_moves (
    match_id INTEGER NOT NULL REFERENCES uttt_matches(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    mark INTEGER NOT NULL,
    sub_x INTEGER NOT NULL,
    sub_y INTEGER NOT NULL,
    x INTEGER NOT NULL,
    y INTEGER NOT NULL,
    played_at $REAL NOT NULL,
    PRIMARY KEY (match_id, seq)
);
