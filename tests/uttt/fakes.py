"""A synchronous stand-in for the Core and the uttt store: every Deferred has fired on return.

Handler tests that must not wait for threads (hypothesis runs hundreds of examples) use
these; the scenarios against the real database are in test_service.py.
"""

import itertools
import types

from twisted.internet import defer, task

from gamed.core.accounts import AuthError
from gamed.core.metrics import Metrics
from gamed.cluster.local import LocalCluster
from gamed.core.testing import make_test_config
from gamed.store.accounts import Account
from gamed.store.ratings import Rating
from gamed.store.uttt import EloSummary, MatchClosed, NewMatch


class FakeAccounts:
    def __init__(self):
        self.by_key = {}
        self.passwords = {}
        self.sessions = {}
        self.ids = itertools.count(1)
        self.guest_holds = []  # as AccountService: "this guest is in use" predicates
        self.changing = set()

    def _create(self, name, password, guest):
        if name.lower() in self.by_key:
            raise AuthError("name_taken", "taken")
        account = Account(next(self.ids), name, name.lower(), guest, False)
        self.by_key[account.name_key] = account
        self.passwords[account.id] = password
        return account

    def login_or_register(self, name, password, peer):
        account = self.by_key.get(name.lower())
        if account is None:
            return defer.succeed((self._create(name, password, False), True))
        if account.is_guest or self.passwords[account.id] != password:
            return defer.fail(AuthError("bad_credentials", "wrong name or password"))
        return defer.succeed((account, False))

    def guest(self, name=None):
        try:
            return defer.succeed(self._create(name or "guest-%05d" % next(self.ids), None, True))
        except AuthError as exc:
            return defer.fail(exc)

    def find_account(self, name):
        return defer.succeed(self.by_key.get(name.lower()))

    def open_session(self, account):
        token = "token-%d-%d" % (account.id, len(self.sessions))
        self.sessions[token] = account
        return defer.succeed(token)

    def revoke_sessions(self, account_id):
        for token in [t for t, a in self.sessions.items() if a.id == account_id]:
            del self.sessions[token]
        return defer.succeed(None)

    def resume_session(self, token):
        return defer.succeed(self.sessions.get(token) if isinstance(token, str) else None)


class FakeFriends:
    def __init__(self, accounts):
        self.accounts = accounts
        self.pairs = set()

    def add(self, a, b):
        new = (a, b) not in self.pairs
        self.pairs.update({(a, b), (b, a)})
        return defer.succeed(new)

    def remove(self, a, b):
        had = (a, b) in self.pairs
        self.pairs -= {(a, b), (b, a)}
        return defer.succeed(had)

    def friends_of(self, a):
        by_id = {acc.id: acc for acc in self.accounts.by_key.values()}
        return defer.succeed(sorted((by_id[b] for x, b in self.pairs if x == a),
                                    key=lambda acc: acc.name_key))


class FakeRatings:
    def get_ratings(self, ids, game):
        return defer.succeed({i: Rating(i, game) for i in ids})


class FakeStore:
    write_concurrency = 1

    def __init__(self):
        self.ids = itertools.count(1)
        self.written = []

    def write_batch(self, ops):
        self.written.extend(ops)
        return defer.succeed([next(self.ids) if isinstance(op, NewMatch) else None
                              for op in ops])

    def open_matches(self):
        return defer.succeed([])

    def take_unseen_results(self, account_id, limit=20):
        return defer.succeed([])

    def elo_summary(self, account_id, top=10):
        return defer.succeed(EloSummary(None if account_id is None else 1000.0,
                                        None if account_id is None else 1, ()))


def fake_core(clock=None):
    accounts = FakeAccounts()
    cluster = LocalCluster()
    return types.SimpleNamespace(
        reactor=clock or task.Clock(), config=make_test_config(), accounts=accounts,
        ratings=FakeRatings(), friends=FakeFriends(accounts), presence=cluster.presence, cluster=cluster,
        metrics=Metrics(), database=None)


__all__ = ["fake_core", "FakeStore", "MatchClosed"]
