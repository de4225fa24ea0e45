"""/admin over a loopback listener: off without a hash, login (cookie flags, CSRF,
throttling), the dashboard, user actions through gamed.core.operator, ending a match."""

from __future__ import annotations

import io
import re
from urllib.parse import urlencode

import bcrypt
import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.logger import LogLevel
from twisted.web.client import Agent, FileBodyProducer, readBody
from twisted.web.http_headers import Headers

from gamed.core.accounts import bcrypt_secret
from gamed.core.config import set_option
from gamed.core.live import GameMonitor, RunningMatch, UnknownMatch
from gamed.web.recentlog import RecentProblems
from gamed.web.resources import make_site

PASSWORD = "console-secret"


class Browser:
    """Just enough of a browser: one cookie jar, GET and form POSTs."""

    def __init__(self, port):
        self.base = "http://127.0.0.1:%d" % port
        self.cookies = {}

    async def request(self, method, path, fields=None):
        headers = Headers()
        if self.cookies:
            headers.addRawHeader(b"cookie", "; ".join(
                "%s=%s" % item for item in self.cookies.items()).encode())
        body = None
        if fields is not None:
            headers.addRawHeader(b"content-type", b"application/x-www-form-urlencoded")
            body = FileBodyProducer(io.BytesIO(urlencode(fields).encode()))
        response = await Agent(reactor).request(method.encode(), (self.base + path).encode(),
                                                headers, body)
        text = (await readBody(response)).decode()
        self.set_cookies = response.headers.getRawHeaders(b"set-cookie") or []
        for raw in self.set_cookies:
            name, _, rest = raw.decode().partition("=")
            value = rest.split(";", 1)[0]
            if "Max-Age=0" in raw.decode():
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return response.code, response.headers, text

    async def login(self, password=PASSWORD, who="olga"):
        code, _, page = await self.request("GET", "/admin/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        return await self.request("POST", "/admin/login",
                                  {"csrf": csrf, "who": who, "password": password})


@pytest.fixture
def console(core):
    hashed = bcrypt.hashpw(bcrypt_secret(PASSWORD), bcrypt.gensalt(4)).decode()
    core.config = set_option(core.config, "http", "admin_password_hash", hashed)
    return core


async def serve(core, recent=None):
    return await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
        make_site(core, recent))


def csrf_of(page):
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


@pytest_twisted.ensureDeferred
async def test_no_console_without_a_password_hash(core):
    port = await serve(core)
    try:
        browser = Browser(port.getHost().port)
        for path in ("/admin", "/admin/", "/admin/login"):
            assert (await browser.request("GET", path))[0] == 404
    finally:
        await port.stopListening()


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_login_cookie_dashboard_and_logout(console):
    recent = RecentProblems()
    recent({"log_level": LogLevel.info, "log_format": "all is well", "log_time": 0})
    recent({"log_level": LogLevel.error, "log_format": "the {thing} broke", "thing": "<pump>",
            "log_namespace": "gamed.x", "log_time": 0})
    port = await serve(console, recent)
    try:
        browser = Browser(port.getHost().port)
        code, headers, _ = await browser.request("GET", "/admin")
        assert code == 303 and headers.getRawHeaders(b"location") == [b"/admin/login"]
        code, _, page = await browser.login("wrong")
        assert code == 403 and "Wrong password" in page and "gamed_admin" not in browser.cookies
        code, headers, _ = await browser.login()
        assert code == 303 and headers.getRawHeaders(b"location") == [b"/admin"]
        session_cookie = [c.decode() for c in browser.set_cookies
                          if c.startswith(b"gamed_admin=")][0]
        for flag in ("HttpOnly", "SameSite=Strict", "Path=/admin", "Max-Age=3600"):
            assert flag in session_cookie
        assert "Secure" not in session_cookie  # plain HTTP here
        code, headers, page = await browser.request("GET", "/admin")
        assert code == 200 and headers.getRawHeaders(b"cache-control") == [b"no-store"]
        for section in ('id="health"', 'id="connections"', 'id="users"', 'id="matches"',
                        'id="online"', 'id="problems"'):
            assert section in page
        assert "the &lt;pump&gt; broke" in page and "answers in" in page
        assert "all is well" not in page
        code, _, _ = await browser.request("POST", "/admin/logout", {"csrf": csrf_of(page)})
        assert code == 303 and "gamed_admin" not in browser.cookies
        assert (await browser.request("GET", "/admin"))[0] == 303
    finally:
        await port.stopListening()


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_forms_without_the_csrf_token_are_refused(console):
    port = await serve(console)
    try:
        browser = Browser(port.getHost().port)
        # the login form: a token not matching its cookie
        await browser.request("GET", "/admin/login")
        code, _, _ = await browser.request("POST", "/admin/login", {
            "csrf": "forged", "who": "x", "password": PASSWORD})
        assert code == 403 and "gamed_admin" not in browser.cookies
        await browser.login()
        victim = await console.accounts.register("victim", "pw", "h:1")
        for fields in ({"name": "victim", "action": "ban"},
                       {"name": "victim", "action": "ban", "csrf": "forged"}):
            code, _, page = await browser.request("POST", "/admin/users", fields)
            assert code == 403 and "security token" in page
        assert not (await console.accounts.find_account("victim")).banned
        # a POST without a session at all
        stranger = Browser(port.getHost().port)
        code, _, _ = await stranger.request("POST", "/admin/users",
                                            {"name": "victim", "action": "ban", "csrf": "x"})
        assert code == 403 and victim.id
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_user_actions_go_through_the_operator_functions(console):
    port = await serve(console)
    closed = []
    console.live.register("uttt", GameMonitor(count=lambda: 0,
                                              disconnect=lambda i: closed.append(i) or 1))
    try:
        browser = Browser(port.getHost().port)
        await browser.login()
        page = (await browser.request("GET", "/admin"))[2]
        victim = await console.accounts.register("victim", "pw", "h:1")
        token = await console.accounts.open_session(victim)

        async def act(action, **extra):
            fields = {"csrf": csrf_of(page), "name": "Victim", "action": action, **extra}
            code, headers, _ = await browser.request("POST", "/admin/users", fields)
            assert code == 303
            return (await browser.request("GET", "/admin"))[2]

        shown = await act("ban")
        assert "banned victim (1 sessions revoked), 1 live connection closed" in shown
        assert closed == [victim.id] and (await console.accounts.find_account("victim")).banned
        assert await console.accounts.resume_session(token) is None
        assert "unbanned victim" in await act("unban")
        assert not (await console.accounts.find_account("victim")).banned
        assert "password of victim changed" in await act("passwd", password="new-pw")
        assert (await console.accounts.login("victim", "new-pw", "h:2")).id == victim.id
        assert "revoked 0 sessions of victim" in await act("revoke")
        fields = {"csrf": csrf_of(page), "name": "ghost", "action": "ban"}
        await browser.request("POST", "/admin/users", fields)
        assert "no account named" in (await browser.request("GET", "/admin"))[2]
    finally:
        await port.stopListening()


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_running_matches_listed_and_ended(console):
    ended = []

    def end(match_id):
        if match_id != "7":
            raise UnknownMatch("no open uttt match %s" % match_id)
        ended.append(match_id)
        return defer.succeed(None)

    console.live.register("uttt", GameMonitor(
        count=lambda: 1, running=lambda: [RunningMatch("uttt", "7", ("ann", "<b>en</b>"))],
        end_match=end))
    port = await serve(console)
    try:
        browser = Browser(port.getHost().port)
        await browser.login()
        page = (await browser.request("GET", "/admin"))[2]
        assert 'data-match="uttt/7"' in page and "&lt;b&gt;en&lt;/b&gt;" in page
        await browser.request("POST", "/admin/matches",
                              {"csrf": csrf_of(page), "game": "uttt", "id": "7"})
        assert ended == ["7"] and "ended uttt match 7" in (
            await browser.request("GET", "/admin"))[2]
        await browser.request("POST", "/admin/matches",
                              {"csrf": csrf_of(page), "game": "uttt", "id": "8"})
        assert "no open uttt match 8" in (await browser.request("GET", "/admin"))[2]
    finally:
        await port.stopListening()


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_console_logins_are_throttled(console):
    console.config = set_option(console.config, "accounts", "address_burst", 3)
    port = await serve(console)
    try:
        browser = Browser(port.getHost().port)
        codes = [(await browser.login("nope"))[0] for _ in range(3)]
        assert codes == [403, 403, 403]
        code, _, page = await browser.login()  # even the right password waits now
        assert code == 429 and "Too many failed logins" in page
    finally:
        await port.stopListening()


def test_gamectl_admin_password_makes_a_hash_the_config_takes(tmp_path, monkeypatch):
    from gamed.admin import main
    from gamed.core.config import ConfigError
    from gamed.games import load_config

    monkeypatch.setattr("sys.stdin", io.StringIO("hunter2-hunter2\n"))
    config = tmp_path / "gamed.toml"
    config.write_text("[accounts]\nbcrypt_cost = 4\n")
    out = io.StringIO()
    assert main(["--config", str(config), "admin-password", "--password-stdin"], out) == 0
    line = out.getvalue().strip()
    assert line.startswith('admin_password_hash = "$2b$04$')
    hashed = line.split('"')[1]
    assert bcrypt.checkpw(bcrypt_secret("hunter2-hunter2"), hashed.encode())
    config.write_text("[http]\n" + line + "\n")
    assert load_config(str(config)).http.admin_password_hash == hashed
    config.write_text('[http]\nadmin_password_hash = "hunter2"\n')
    with pytest.raises(ConfigError, match="http.admin_password_hash"):
        load_config(str(config))
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["admin-password", "--password-stdin"], io.StringIO()) == 1
