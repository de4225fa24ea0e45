"""Accounts for every game: register, log in, guests, sessions, throttling.

Password hashing runs on a small dedicated thread pool (never the reactor thread and never
the database pool); an unknown name still costs one bcrypt check against a dummy hash, so
the reply time does not reveal which names exist.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import secrets
import unicodedata
from typing import Optional

import bcrypt
from twisted.application import service
from twisted.internet import defer, task, threads
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from gamed.core.config import AccountSettings
from gamed.core.logs import log_failure
from gamed.core.ratelimit import LeakyBuckets
from gamed.store.accounts import Account, AccountStore, NameTaken, SessionStore, name_key
from gamed.store.database import DatabaseUnavailable

log = Logger(namespace="gamed.accounts")

MAX_NAME_LENGTH = 32



BCRYPT_MAX_BYTES = 72  # bcrypt reads no further
SESSION_PURGE_INTERVAL = 3600.0  # seconds between purges of expired sessions


def bcrypt_secret(password: str) -> bytes:
    """What bcrypt is given for a password: its UTF-8 bytes, or for one longer than bcrypt
    reads (32 characters of a non-Latin script can be 96 bytes), the base64 of its SHA-256,
    so that every byte counts. Passwords up to 72 bytes hash exactly as they always did."""
    data = password.encode("utf-8")
    if len(data) <= BCRYPT_MAX_BYTES:
        return data
    return base64.b64encode(hashlib.sha256(data).digest())

UNAVAILABLE = "the game database is unavailable; try again in a moment"


def unavailable_as_auth_error(method):
    """A database that is away turns into AuthError("unavailable"): every game already
    answers an AuthError in its own login-failure shape."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        def translate(failure):
            failure.trap(DatabaseUnavailable)
            raise AuthError("unavailable", UNAVAILABLE)

        return method(*args, **kwargs).addErrback(translate)

    return wrapper


class AuthError(Exception):
    """A refused account operation: a stable `code` and a message fit for the player."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def check_name(name) -> str:
    """The generic name rule shared by every game (games may add stricter ones)."""
    if not isinstance(name, str):
        raise AuthError("invalid_name", "the name must be a string")
    if not name or len(name) > MAX_NAME_LENGTH:
        raise AuthError("invalid_name", "the name must be 1 to %d characters" % MAX_NAME_LENGTH)
    if name != name.strip():
        raise AuthError("invalid_name", "the name must not start or end with spaces")
    if any(unicodedata.category(c)[0] == "C" for c in name):
        raise AuthError("invalid_name", "the name must not contain control characters")
    return name


def host_of(peer: str) -> str:
    """'1.2.3.4:5678' -> '1.2.3.4' (throttling is per address, not per port)."""
    return peer.rsplit(":", 1)[0] if ":" in peer else peer


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class AccountService(service.Service):
    """Registration, login and sessions; every method returns a Deferred."""

    name = "accounts"

    def __init__(self, reactor, settings: AccountSettings, accounts: AccountStore,
                 sessions: SessionStore, metrics=None):
        self.reactor = reactor
        self.settings = settings
        self.store = accounts
        self.sessions = sessions
        self.metrics = metrics
        self.pool = ThreadPool(minthreads=0, maxthreads=settings.bcrypt_threads,
                               name="gamed-bcrypt")
        self.in_flight = 0
        now = reactor.seconds
        self.by_address = LeakyBuckets(settings.address_burst, settings.address_rate, now)
        self.by_account = LeakyBuckets(settings.account_burst, settings.account_rate, now)
        self._dummy_hash: Optional[bytes] = None
        #: predicates account_id -> bool, "this guest is in use" (online somewhere, open
        #: matches): a guest in use keeps its name; one that is not gives it up to whoever
        #: registers that name
        self.guest_holds: list = []
        #: guest accounts changing hands right now (a registration taking the name, a
        #: game handing it to a new temporary player): one change at a time
        self.changing: set = set()

    # -- service -------------------------------------------------------------------------

    def startService(self):
        service.Service.startService(self)
        self.pool.start()
        self.purger = task.LoopingCall(self.purge_sessions)
        self.purger.clock = self.reactor
        self.purger.start(SESSION_PURGE_INTERVAL, now=False)

    def purge_sessions(self) -> defer.Deferred:
        """Expired and revoked sessions are deleted (they would pile up forever)."""
        d = self.sessions.purge_expired(self.reactor.seconds())

        def purged(count):
            if count:
                log.info("purged {count} expired or revoked sessions", count=count)

        d.addCallbacks(purged, lambda f: log_failure(log, "purging sessions failed", f))
        return d

    def stopService(self):
        service.Service.stopService(self)
        purger = getattr(self, "purger", None)
        if purger is not None and purger.running:
            purger.stop()
        if self.pool.started:
            return threads.deferToThread(self.pool.stop)

    # -- password hashing off the reactor ------------------------------------------------------

    def _in_pool(self, func, *args) -> defer.Deferred:
        if self.in_flight >= self.settings.bcrypt_queue_limit:
            return defer.fail(AuthError("busy", "the server is busy, try again in a moment"))
        if not self.pool.started:
            self.pool.start()
        self.in_flight += 1
        self._gauge()
        d = threads.deferToThreadPool(self.reactor, self.pool, func, *args)

        def done(result):
            self.in_flight -= 1
            self._gauge()
            return result

        return d.addBoth(done)

    def _gauge(self):
        if self.metrics is not None:
            self.metrics.bcrypt_queue.set(self.in_flight)

    def hash_password(self, password: str) -> defer.Deferred:
        cost = self.settings.bcrypt_cost
        return self._in_pool(
            lambda: bcrypt.hashpw(bcrypt_secret(password), bcrypt.gensalt(cost)).decode("ascii"))

    def check_password(self, password: str, hashed: Optional[str]) -> defer.Deferred:
        if hashed is None:
            return self._in_pool(self._dummy_check, password)
        return self._in_pool(
            lambda: bcrypt.checkpw(bcrypt_secret(password), hashed.encode("ascii")))

    def _dummy_check(self, password: str) -> bool:
        """Same cost as a real check, always False (unknown names, guests)."""
        if self._dummy_hash is None:
            self._dummy_hash = bcrypt.hashpw(b"gamed dummy password",
                                             bcrypt.gensalt(self.settings.bcrypt_cost))
        bcrypt.checkpw(bcrypt_secret(password), self._dummy_hash)
        return False

    # -- rules -----------------------------------------------------------------------------

    def check_password_rule(self, password) -> str:
        if not isinstance(password, str):
            raise AuthError("invalid_password", "the password must be a string")
        if not password:
            raise AuthError("invalid_password", "the password must not be empty")
        if len(password.encode("utf-8")) > self.settings.max_password_length:
            raise AuthError("invalid_password", "the password is longer than %d bytes"
                            % self.settings.max_password_length)
        return password

    def _throttle(self, name: str, peer: str) -> None:
        """Refuse while the address or the name has too many recent failures (checked
        before any bcrypt work; only failures fill the buckets, see _failed)."""
        if self.by_address.full(host_of(peer)):
            self._count("throttled")
            raise AuthError("throttled", "too many login attempts from your address; retry in "
                                         "%d s" % (self.by_address.retry_after(host_of(peer)) + 1))
        if self.by_account.full(name_key(name)):
            self._count("throttled")
            raise AuthError("throttled", "too many login attempts for this name; retry in %d s"
                            % (self.by_account.retry_after(name_key(name)) + 1))

    def _failed(self, name: str, peer: str) -> None:
        self.by_address.allow(host_of(peer))
        self.by_account.allow(name_key(name))

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.logins.labels(outcome).inc()

    # -- the operations -----------------------------------------------------------------------

    @unavailable_as_auth_error
    @defer.inlineCallbacks
    def register(self, name: str, password: str, peer: str = "local"):
        check_name(name)
        self.check_password_rule(password)
        self._throttle(name, peer)
        existing = yield self.store.find(name)
        if existing is not None:
            freed = yield self._free_guest_name(existing)
            if not freed:
                self._count("name_taken")
                raise AuthError("name_taken", "the name %r is taken" % name)
        hashed = yield self.hash_password(password)
        try:
            account = yield self.store.create(name, hashed, self.reactor.seconds())
        except NameTaken:
            self._count("name_taken")
            raise AuthError("name_taken", "the name %r is taken" % name) from None
        self._count("registered")
        log.info("registered account {account_id} {name}", account_id=account.id, name=name)
        return account

    @defer.inlineCallbacks
    def _free_guest_name(self, account: Account):
        """A guest nobody is using gives its name up to a registration: the guest account
        (and its history) takes a generated name. True if the name is free now."""
        if (not account.is_guest or account.id in self.changing
                or any(hold(account.id) for hold in self.guest_holds)):
            return False
        self.changing.add(account.id)
        try:
            for _ in range(5):
                try:
                    renamed = yield self.store.rename_guest(account.id,
                                                            "guest-" + secrets.token_hex(5))
                except NameTaken:
                    continue
                if renamed:
                    log.info("guest {account_id} {name} gave its name up to a registration",
                             account_id=account.id, name=account.name)
                return renamed
            return False
        finally:
            self.changing.discard(account.id)

    @unavailable_as_auth_error
    @defer.inlineCallbacks
    def login(self, name: str, password: str, peer: str = "local"):
        check_name(name)
        if not isinstance(password, str):
            raise AuthError("invalid_password", "the password must be a string")
        self._throttle(name, peer)
        found = yield self.store.find_with_hash(name)
        account, hashed = found if found is not None else (None, None)
        if len(password.encode("utf-8")) > self.settings.max_password_length:
            hashed = None  # longer than any password can be: a dummy check, same cost
        ok = yield self.check_password(password, hashed)
        if not ok or account is None:
            self._failed(name, peer)
            self._count("bad_credentials")
            raise AuthError("bad_credentials", "wrong name or password")
        if account.banned:
            self._failed(name, peer)
            self._count("banned")
            raise AuthError("banned", "this account is banned")
        self._count("ok")
        return account

    @unavailable_as_auth_error
    @defer.inlineCallbacks
    def login_or_register(self, name: str, password: str, peer: str = "local"):
        """(Account, created): log in, or register the name if nobody has it."""
        check_name(name)
        self.check_password_rule(password)
        existing = yield self.store.find(name)
        if existing is None or existing.is_guest:  # a guest nobody uses gives its name up
            try:
                account = yield self.register(name, password, peer)
                return account, True
            except AuthError as exc:
                if exc.code != "name_taken":
                    raise
                if existing is not None:
                    raise AuthError("name_taken", "the name %r is in use by a guest player"
                                    % name) from None
        account = yield self.login(name, password, peer)
        return account, False

    @unavailable_as_auth_error
    @defer.inlineCallbacks
    def guest(self, name: Optional[str] = None):
        """A temporary account: the given name if free, else a generated one."""
        if name is not None:
            check_name(name)
            try:
                account = yield self.store.create(name, None, self.reactor.seconds(), guest=True)
                return account
            except NameTaken:
                raise AuthError("name_taken", "the name %r is taken" % name) from None
        for _ in range(5):
            generated = "guest-" + secrets.token_hex(5)
            try:
                account = yield self.store.create(generated, None, self.reactor.seconds(),
                                                  guest=True)
                return account
            except NameTaken:
                continue
        raise AuthError("busy", "could not allocate a guest name")

    def find_account(self, name: str) -> defer.Deferred:
        return self.store.find(name)

    def get_account(self, account_id: int) -> defer.Deferred:
        return self.store.get(account_id)

    # -- sessions -----------------------------------------------------------------------------

    @defer.inlineCallbacks
    def open_session(self, account: Account):
        token = secrets.token_urlsafe(32)
        now = self.reactor.seconds()
        yield self.sessions.add(hash_token(token), account.id, now, now + self.settings.session_ttl)
        return token

    def resume_session(self, token) -> defer.Deferred:
        if not isinstance(token, str) or not token or len(token) > 128:
            return defer.succeed(None)
        return self.sessions.account_for(hash_token(token), self.reactor.seconds())

    def revoke_session(self, token: str) -> defer.Deferred:
        return self.sessions.revoke(hash_token(token))

    def revoke_sessions(self, account_id: int) -> defer.Deferred:
        return self.sessions.revoke_all(account_id)
