"""Friend lists (one directed row per friendship side; both sides are written together)."""

from __future__ import annotations

from twisted.internet import defer

from gamed.store.accounts import Account, iso
from gamed.store.database import Cursor, Database, IntegrityError


class FriendStore:
    def __init__(self, database: Database, now):
        self.database = database
        self.now = now

    def add(self, account_id: int, friend_id: int) -> defer.Deferred:
        """Make the two accounts friends (both directions); True if it is new."""
        created = iso(self.now())

        def add(cur: Cursor):
            exists = cur.scalar("SELECT 1 FROM friends WHERE account_id = ? AND friend_id = ?",
                                (account_id, friend_id))
            if exists:
                return False
            try:
                for a, b in ((account_id, friend_id), (friend_id, account_id)):
                    if not cur.scalar("SELECT 1 FROM friends WHERE account_id = ? AND"
                                      " friend_id = ?", (a, b)):
                        cur.execute("INSERT INTO friends (account_id, friend_id, created_at)"
                                    " VALUES (?, ?, ?)", (a, b, created))
            except IntegrityError:
                return False
            return True

        return self.database.run_interaction("add_friend", add)

    def remove(self, account_id: int, friend_id: int) -> defer.Deferred:
        """End the friendship both ways; True if there was one."""

        def remove(cur: Cursor):
            count = 0
            for a, b in ((account_id, friend_id), (friend_id, account_id)):
                count += cur.execute("DELETE FROM friends WHERE account_id = ? AND friend_id = ?",
                                     (a, b)).rowcount
            return count > 0

        return self.database.run_interaction("remove_friend", remove)

    def friends_of(self, account_id: int) -> defer.Deferred:
        """[Account] ordered by name."""
        return self.database.run_read(
            "friends_of", lambda cur: [
                Account(r[0], r[1], r[2], bool(r[3]), bool(r[4])) for r in cur.execute(
                    "SELECT a.id, a.name, a.name_key, a.is_guest, a.banned FROM friends f"
                    " JOIN accounts a ON a.id = f.friend_id WHERE f.account_id = ?"
                    " ORDER BY a.name_key", (account_id,)).fetchall()])
