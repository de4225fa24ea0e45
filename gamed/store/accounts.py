"""Accounts and session tokens: the only SQL that touches `accounts` and `sessions`."""

from __future__ import annotations

import datetime
from typing import Optional

import attrs
from twisted.internet import defer

from gamed.store.database import Cursor, Database, IntegrityError


class NameTaken(Exception):
    """Another account already has this name (names are unique case-insensitively)."""


@attrs.frozen
class Account:
    id: int
    name: str
    name_key: str
    is_guest: bool = False
    banned: bool = False


def name_key(name: str) -> str:
    return name.casefold()


def iso(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat()


_COLUMNS = "id, name, name_key, is_guest, banned"
_BY_KEY = "SELECT " + _COLUMNS + " FROM accounts WHERE name_key = ?"
_BY_KEY_WITH_HASH = "SELECT " + _COLUMNS + ", password_hash FROM accounts WHERE name_key = ?"
_BY_ID = "SELECT " + _COLUMNS + " FROM accounts WHERE id = ?"


def _searchable(name) -> bool:
    """A NUL can be in no account's name, and PostgreSQL refuses it in a query string:
    such a name is simply not found (on both engines alike)."""
    return isinstance(name, str) and "\x00" not in name


def find_txn(cur: Cursor, name: str) -> Optional[Account]:
    """The account called `name` (any case), or None."""
    if not _searchable(name):
        return None
    return _account(cur.execute(_BY_KEY, (name_key(name),)).fetchone())


def _account(row) -> Optional[Account]:
    if row is None:
        return None
    return Account(row[0], row[1], row[2], bool(row[3]), bool(row[4]))


class AccountStore:
    def __init__(self, database: Database):
        self.database = database

    def create(self, name: str, password_hash: Optional[str], now: float,
               guest: bool = False) -> defer.Deferred:
        """A new account; fails with NameTaken."""

        def create(cur: Cursor):
            try:
                new_id = cur.insert(
                    "INSERT INTO accounts (name, name_key, password_hash, is_guest, banned,"
                    " created_at) VALUES (?, ?, ?, ?, 0, ?)",
                    (name, name_key(name), password_hash, int(guest), iso(now)))
            except IntegrityError:
                raise NameTaken(name) from None
            return Account(new_id, name, name_key(name), guest, False)

        return self.database.run_interaction("create_account", create)

    def rename_guest(self, account_id: int, new_name: str) -> defer.Deferred:
        """Give a guest account another name (its history goes with it); True if renamed,
        False if it is no longer a guest; fails with NameTaken."""

        def rename(cur: Cursor):
            try:
                return cur.execute(
                    "UPDATE accounts SET name = ?, name_key = ? WHERE id = ? AND is_guest = 1",
                    (new_name, name_key(new_name), account_id)).rowcount == 1
            except IntegrityError:
                raise NameTaken(new_name) from None

        return self.database.run_interaction("rename_guest", rename)

    def find(self, name: str) -> defer.Deferred:
        if not _searchable(name):
            return defer.succeed(None)
        return self.database.run_read("find_account", find_txn, name)

    def find_with_hash(self, name: str) -> defer.Deferred:
        """(Account, password hash or None) or None."""
        if not _searchable(name):
            return defer.succeed(None)

        def find(cur: Cursor):
            row = cur.execute(_BY_KEY_WITH_HASH, (name_key(name),)).fetchone()
            return None if row is None else (_account(row[:5]), row[5])

        return self.database.run_read("find_account_hash", find)

    def get(self, account_id: int) -> defer.Deferred:
        return self.database.run_read(
            "get_account", lambda cur: _account(cur.execute(
                _BY_ID, (account_id,)).fetchone()))

    def get_many(self, account_ids) -> defer.Deferred:
        ids = sorted(set(account_ids))

        def get(cur: Cursor):
            found = {}
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                sql = ("SELECT " + _COLUMNS + " FROM accounts WHERE id IN ("
                       + ",".join("?" * len(chunk)) + ")")
                for row in cur.execute(sql, chunk).fetchall():
                    found[row[0]] = _account(row)
            return found

        return self.database.run_read("get_accounts", get)

    def set_password_hash(self, account_id: int, password_hash: str) -> defer.Deferred:
        return self.database.run_interaction(
            "set_password", lambda cur: cur.execute(
                "UPDATE accounts SET password_hash = ?, is_guest = 0 WHERE id = ?",
                (password_hash, account_id)).rowcount)

    def set_banned(self, account_id: int, banned: bool) -> defer.Deferred:
        return self.database.run_interaction(
            "set_banned", lambda cur: cur.execute(
                "UPDATE accounts SET banned = ? WHERE id = ?",
                (int(banned), account_id)).rowcount)

    def delete(self, account_id: int) -> defer.Deferred:
        return self.database.run_interaction(
            "delete_account", lambda cur: cur.execute(
                "DELETE FROM accounts WHERE id = ?", (account_id,)).rowcount)


class SessionStore:
    """Session tokens, stored as SHA-256 hashes with an expiry and a revoked flag."""

    def __init__(self, database: Database):
        self.database = database

    def add(self, token_hash: str, account_id: int, now: float, expires_at: float):
        return self.database.run_interaction(
            "create_session", lambda cur: cur.execute(
                "INSERT INTO sessions (token_hash, account_id, created_at, expires_at, revoked)"
                " VALUES (?, ?, ?, ?, 0)", (token_hash, account_id, now, expires_at)))

    def account_for(self, token_hash: str, now: float) -> defer.Deferred:
        """The live session's Account (not expired, not revoked, not banned) or None."""
        return self.database.run_read(
            "resume_session", lambda cur: _account(cur.execute(
                "SELECT a.id, a.name, a.name_key, a.is_guest, a.banned FROM sessions s"
                " JOIN accounts a ON a.id = s.account_id WHERE s.token_hash = ?"
                " AND s.revoked = 0 AND s.expires_at > ? AND a.banned = 0",
                (token_hash, now)).fetchone()))

    def revoke(self, token_hash: str) -> defer.Deferred:
        return self.database.run_interaction(
            "revoke_session", lambda cur: cur.execute(
                "UPDATE sessions SET revoked = 1 WHERE token_hash = ?", (token_hash,)).rowcount)

    def revoke_all(self, account_id: int) -> defer.Deferred:
        return self.database.run_interaction(
            "revoke_sessions", lambda cur: cur.execute(
                "UPDATE sessions SET revoked = 1 WHERE account_id = ? AND revoked = 0",
                (account_id,)).rowcount)

    def purge_expired(self, now: float) -> defer.Deferred:
        return self.database.run_interaction(
            "purge_sessions", lambda cur: cur.execute(
                "DELETE FROM sessions WHERE expires_at <= ? OR revoked = 1", (now,)).rowcount)
