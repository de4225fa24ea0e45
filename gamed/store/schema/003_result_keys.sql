-- A result may carry a key of the game's own (unique per match): a write retried after
-- its commit went through (the acknowledgement was lost) finds the stored result instead
-- of storing the match, and its rating changes, a second time.

ALTER TABLE matches ADD COLUMN result_key TEXT;
CREATE UNIQUE INDEX matches_result_key ON matches (result_key);
