"""/admin: the operator console, only when `[http] admin_password_hash` is set.

One password (a bcrypt hash, checked on the accounts' bounded bcrypt pool), logins
throttled per address and overall like game logins, a server-side session named by an
HttpOnly, SameSite=Strict cookie (Secure behind TLS), and a CSRF token in every form
(the login form's is a double-submit cookie). The console shows live connections per
service, running matches per game (with a way to end one), online players, the recent
warnings and errors of the log, database and bcrypt queue health; its user actions call
`gamed.core.operator`, the same functions as gamectl, and every action is logged with the
operator's name and address.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Optional

import attrs
from twisted.logger import Logger
from twisted.web import resource

from gamed.core import operator
from gamed.core.accounts import AuthError, host_of
from gamed.core.live import UnknownMatch
from gamed.core.ratelimit import LeakyBuckets
from gamed.web.api import GAMES
from gamed.web.render import Html, Page, PageError, Redirect, query_arg
from gamed.web.resources import NotFound

log = Logger(namespace="gamed.admin")

SESSION_COOKIE = "gamed_admin"
LOGIN_COOKIE = "gamed_admin_login"
MAX_SESSIONS = 256
ONLINE_SHOWN = 100
MATCHES_SHOWN = 50


@attrs.define
class AdminSession:
    token: str
    csrf: str
    who: str
    address: str
    expires: float
    flash: list = attrs.Factory(list)  # [(text, is_error)] shown once

    @property
    def by(self) -> str:
        return "admin:%s@%s" % (self.who, self.address)


class AdminSessions:
    def __init__(self, now, ttl: float):
        self.now = now
        self.ttl = ttl
        self.sessions: dict = {}

    def open(self, who: str, address: str) -> AdminSession:
        if len(self.sessions) >= MAX_SESSIONS:  # forget the oldest
            del self.sessions[min(self.sessions, key=lambda t: self.sessions[t].expires)]
        session = AdminSession(secrets.token_urlsafe(32), secrets.token_urlsafe(32), who,
                               address, self.now() + self.ttl)
        self.sessions[session.token] = session
        return session

    def get(self, token: Optional[str]) -> Optional[AdminSession]:
        session = self.sessions.get(token) if token else None
        if session is not None and session.expires <= self.now():
            del self.sessions[token]
            return None
        return session

    def close(self, token: str) -> None:
        self.sessions.pop(token, None)


def cookie(request, name: str, value: str, max_age: int) -> str:
    secure = request.isSecure() or request.getHeader(b"x-forwarded-proto") == "https"
    return "%s=%s; Path=/admin; Max-Age=%d; HttpOnly; SameSite=Strict%s" % (
        name, value, max_age, "; Secure" if secure else "")


def read_cookie(request, name: str) -> Optional[str]:
    raw = request.getCookie(name.encode("ascii"))
    return raw.decode("ascii", "replace") if raw else None


def form(request, name: str) -> str:
    return query_arg(request, name) or ""


class Console:
    """What the console's pages share: the core, the sessions, the throttles."""

    def __init__(self, core, recent):
        settings = core.config.accounts
        now = core.reactor.seconds
        self.core = core
        self.recent = recent
        self.password_hash = core.config.http.admin_password_hash
        self.sessions = AdminSessions(now, core.config.http.admin_session_ttl)
        self.by_address = LeakyBuckets(settings.address_burst, settings.address_rate, now)
        self.overall = LeakyBuckets(settings.account_burst, settings.account_rate, now)


class AdminPage(Page):
    etags = False  # its forms carry a CSRF token: always made anew
    compress = False  # ... which compression beside echoed input would leak (BREACH)

    def __init__(self, core, env, console: Console):
        super().__init__(core, env)
        self.console = console

    def render_POST(self, request):
        return self._answer(request, self.post)

    async def post(self, request, *path):
        raise PageError(405, "Not allowed")

    def session(self, request) -> Optional[AdminSession]:
        return self.console.sessions.get(read_cookie(request, SESSION_COOKIE))

    def checked_post(self, request) -> AdminSession:
        """The session of a POST whose CSRF token matches it, or a 403."""
        session = self.session(request)
        if session is None:
            raise PageError(403, "Not logged in", "Log in to the console first.")
        token = form(request, "csrf")
        if not hmac.compare_digest(token.encode(), session.csrf.encode()):
            log.warn("admin console: a POST to {uri} from {address} without the right CSRF "
                     "token was refused", uri=request.uri, address=client(request))
            raise PageError(403, "Refused", "The form's security token is missing or wrong: "
                            "reload the console and try again.")
        return session


def client(request) -> str:
    peer = request.getClientAddress()
    return getattr(peer, "host", None) or "unknown"


class Login(AdminPage):
    async def page(self, request, *path):
        if self.session(request) is not None:
            return Redirect("/admin")
        return self.form_page(request)

    def form_page(self, request, error: str = "", status: int = 200, who: str = "") -> Html:
        token = secrets.token_urlsafe(24)
        return Html("admin_login.html", {"csrf": token, "error": error, "who": who},
                    status=status, headers={
                        "set-cookie": [cookie(request, LOGIN_COOKIE, token, 600)],
                        "cache-control": "no-store"})

    async def post(self, request, *path):
        console = self.console
        expected = read_cookie(request, LOGIN_COOKIE) or ""
        token = form(request, "csrf")
        if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
            log.warn("admin console: a login from {address} without the right CSRF token "
                     "was refused", address=client(request))
            raise PageError(403, "Refused", "The login form's security token is missing or "
                            "wrong: reload the login page and try again.")
        address = client(request)
        who = form(request, "who").strip()[:32]
        if not who or any(not c.isprintable() for c in who):
            return self.form_page(request, "Give your name (it goes in the log).", 400)
        host = host_of(address)
        for buckets, key, whose in ((console.by_address, host, "your address"),
                                    (console.overall, "admin", "the console")):
            if buckets.full(key):
                log.warn("admin console: login from {address} throttled", address=address)
                return self.form_page(request, "Too many failed logins for %s; retry in %d s."
                                      % (whose, buckets.retry_after(key) + 1), 429, who)
        try:
            ok = await self.core.accounts.check_password(form(request, "password"),
                                                         console.password_hash)
        except AuthError as exc:
            return self.form_page(request, exc.message, 503, who)
        if not ok:
            console.by_address.allow(host)
            console.overall.allow("admin")
            log.warn("admin console: failed login as {who} from {address}", who=who,
                     address=address)
            return self.form_page(request, "Wrong password.", 403, who)
        session = console.sessions.open(who, address)
        log.info("admin console: {who} logged in from {address}", who=who, address=address)
        ttl = int(console.sessions.ttl)
        return Redirect("/admin", headers={"set-cookie": [
            cookie(request, SESSION_COOKIE, session.token, ttl),
            cookie(request, LOGIN_COOKIE, "", 0)]})


class Logout(AdminPage):
    async def post(self, request, *path):
        session = self.checked_post(request)
        self.console.sessions.close(session.token)
        log.info("admin console: {by} logged out", by=session.by)
        return Redirect("/admin/login", headers={"set-cookie": [
            cookie(request, SESSION_COOKIE, "", 0)]})


class Dashboard(AdminPage):
    async def page(self, request, *path):
        if path:
            raise PageError(404, "Page not found")
        session = self.session(request)
        if session is None:
            return Redirect("/admin/login")
        core = self.core
        services = [(name, dict(sorted(stats.connections.items())), stats.connections_total)
                    for name, stats in sorted(core.metrics.services.items())]
        games = []
        for game in GAMES:
            monitor = core.live.games.get(game)
            games.append({
                "name": game, "count": core.live.count(game),
                "online": core.presence.count(game),
                "matches": core.live.running(game)[:MATCHES_SHOWN],
                "can_end": monitor is not None and monitor.end_match is not None})
        local = getattr(core.presence, "local_games", lambda: {})()
        ids = sorted(local)[:ONLINE_SHOWN]
        accounts = await core.accounts.store.get_many(ids) if ids else {}
        online = [(accounts[i].name, local[i]) for i in ids if i in accounts]
        started = core.reactor.seconds()
        try:
            await core.database.ping()
            database = {"ok": True, "ms": (core.reactor.seconds() - started) * 1000}
        except Exception as exc:  # noqa: BLE001 - shown on the page
            database = {"ok": False, "error": str(exc) or type(exc).__name__}
        database["name"] = core.database.name
        accounts_settings = core.config.accounts
        flash, session.flash = session.flash, []
        return Html("admin.html", {
            "session": session, "services": services, "games": games, "online": online,
            "online_total": len(local), "database": database,
            "bcrypt": {"in_flight": core.accounts.in_flight,
                       "limit": accounts_settings.bcrypt_queue_limit,
                       "threads": accounts_settings.bcrypt_threads,
                       "cost": accounts_settings.bcrypt_cost},
            "problems": self.console.recent.newest() if self.console.recent else [],
            "actions": operator.CONSOLE_ACTIONS, "flash": flash},
            headers={"cache-control": "no-store"})


class UserAction(AdminPage):
    async def post(self, request, *path):
        session = self.checked_post(request)
        name, action = form(request, "name").strip(), form(request, "action")
        core, by = self.core, session.by
        actions = {
            "ban": lambda: operator.ban(core, name, by),
            "unban": lambda: operator.unban(core, name, by),
            "revoke": lambda: operator.revoke_sessions(core, name, by),
            "passwd": lambda: operator.set_password(core, name, form(request, "password"), by),
        }
        if action not in actions or not name:
            session.flash.append(("Choose an action and give a name.", True))
            return Redirect("/admin")
        try:
            session.flash.append((await actions[action](), False))
        except (operator.OperatorError, AuthError) as exc:
            log.info("operator {by}: {action} {name} refused: {why}", by=by, action=action,
                     name=name, why=str(exc))
            session.flash.append((str(exc), True))
        return Redirect("/admin")


class EndMatch(AdminPage):
    async def post(self, request, *path):
        session = self.checked_post(request)
        game, match_id = form(request, "game"), form(request, "id")
        try:
            session.flash.append((await operator.end_match(self.core, game, match_id,
                                                           session.by), False))
        except UnknownMatch as exc:
            session.flash.append((str(exc), True))
        return Redirect("/admin")


class AdminConsole(resource.Resource):
    """/admin and below; built only when a password hash is configured."""

    def __init__(self, core, env, recent):
        super().__init__()
        console = Console(core, recent)
        self.dashboard = Dashboard(core, env, console)
        self.putChild(b"", self.dashboard)
        self.putChild(b"login", Login(core, env, console))
        self.putChild(b"logout", Logout(core, env, console))
        self.putChild(b"users", UserAction(core, env, console))
        self.putChild(b"matches", EndMatch(core, env, console))

    def getChild(self, path, request):
        return NotFound()

    def render(self, request):
        return self.dashboard.render(request)
