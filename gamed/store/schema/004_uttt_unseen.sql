-- uttt: a player's results not yet shown (read at every login) are found through the
-- index itself, not by reading every finished match of theirs: the login read grew with a
-- player's history (bench/soak.py: 0.7 ms after two minutes, growing). The new indexes
-- still serve every query by (player, is_open).

DROP INDEX uttt_matches_player_a;
DROP INDEX uttt_matches_player_b;
CREATE INDEX uttt_matches_player_a ON uttt_matches (player_a, is_open, seen_a);
CREATE INDEX uttt_matches_player_b ON uttt_matches (player_b, is_open, seen_b);
