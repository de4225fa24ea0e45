"""AccountService: register, login, guests, sessions, throttling, bcrypt off the reactor."""

import threading

import bcrypt
import pytest
import pytest_twisted

from gamed.core.accounts import AuthError


async def refused(deferred, code):
    with pytest.raises(AuthError) as info:
        await deferred
    assert info.value.code == code, info.value
    return info.value


@pytest_twisted.ensureDeferred
async def test_register_then_login_case_insensitive(core):
    accounts = core.accounts
    alice = await accounts.register("Alice", "secret", "1.2.3.4:5")
    assert alice.name == "Alice" and not alice.is_guest
    again = await accounts.login("alice", "secret", "1.2.3.4:6")
    assert again.id == alice.id
    await refused(accounts.login("alice", "wrong", "1.2.3.4:7"), "bad_credentials")
    await refused(accounts.login("nobody", "secret", "1.2.3.4:7"), "bad_credentials")
    await refused(accounts.register("ALICE", "x", "1.2.3.4:8"), "name_taken")


@pytest_twisted.ensureDeferred
async def test_login_or_register(core):
    account, created = await core.accounts.login_or_register("bob", "pw", "h:1")
    assert created
    same, created = await core.accounts.login_or_register("BOB", "pw", "h:1")
    assert same.id == account.id and not created
    await refused(core.accounts.login_or_register("bob", "nope", "h:1"), "bad_credentials")


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_name_and_password_rules(core):
    for name in ("", " padded", "x" * 33, "tab\there", 42, None):
        await refused(core.accounts.register(name, "pw", "h:1"), "invalid_name")
    for password in ("", "x" * 257, None, 5):
        await refused(core.accounts.register("carol", password, "h:1"), "invalid_password")


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_bcrypt_runs_off_the_reactor_thread(core, monkeypatch):
    seen = []
    real_checkpw, real_hashpw = bcrypt.checkpw, bcrypt.hashpw

    def checkpw(*args):
        seen.append(threading.current_thread() is threading.main_thread())
        return real_checkpw(*args)

    def hashpw(*args):
        seen.append(threading.current_thread() is threading.main_thread())
        return real_hashpw(*args)

    monkeypatch.setattr(bcrypt, "checkpw", checkpw)
    monkeypatch.setattr(bcrypt, "hashpw", hashpw)
    await core.accounts.register("dave", "pw", "h:1")
    await core.accounts.login("dave", "pw", "h:1")
    await refused(core.accounts.login("unknown-name", "pw", "h:1"), "bad_credentials")
    assert seen and not any(seen)  # the unknown name was checked too (dummy hash)
    assert core.metrics.bcrypt_queue._value.get() == 0


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_login_throttling_per_address_and_per_account(core):
    settings = core.accounts.settings
    await core.accounts.register("erin", "pw", "9.9.9.9:1")
    # successes never fill a bucket
    for i in range(settings.address_burst + 5):
        await core.accounts.login("erin", "pw", "9.9.9.9:%d" % i)
    # failures for one name, from many addresses: the name is throttled, even with the
    # right password, and the reply says when to retry
    for i in range(settings.account_burst):
        await refused(core.accounts.login("erin", "bad", "10.0.0.%d:1" % i), "bad_credentials")
    error = await refused(core.accounts.login("erin", "pw", "10.0.1.1:1"), "throttled")
    assert "retry" in error.message
    # failures from one address, for many names: the address is throttled
    await core.accounts.register("frank", "pw", "11.0.0.1:1")
    for i in range(settings.address_burst):
        await refused(core.accounts.login("nobody%d" % i, "pw", "12.0.0.1:%d" % i),
                      "bad_credentials")
    await refused(core.accounts.login("frank", "pw", "12.0.0.1:99"), "throttled")
    assert (await core.accounts.login("frank", "pw", "13.0.0.1:1")).name == "frank"


@pytest_twisted.ensureDeferred
async def test_guests_and_sessions(core):
    guest = await core.accounts.guest()
    assert guest.is_guest and guest.name.startswith("guest-")
    named = await core.accounts.guest("visitor")
    assert named.name == "visitor" and named.is_guest
    await refused(core.accounts.guest("visitor"), "name_taken")
    await refused(core.accounts.login("visitor", "", "h:1"), "bad_credentials")
    token = await core.accounts.open_session(named)
    assert len(token) >= 40
    assert (await core.accounts.resume_session(token)).id == named.id
    assert await core.accounts.resume_session("made-up") is None
    assert await core.accounts.resume_session(None) is None
    await core.accounts.revoke_session(token)
    assert await core.accounts.resume_session(token) is None


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_banned_accounts_cannot_log_in(core):
    account = await core.accounts.register("gina", "pw", "h:1")
    await core.accounts.store.set_banned(account.id, True)
    await refused(core.accounts.login("gina", "pw", "h:2"), "banned")


def test_a_password_past_bcrypts_72_bytes_counts_to_its_last_byte():
    from gamed.core.accounts import bcrypt_secret

    short = "é" * 36  # 72 bytes: given to bcrypt as it is, as always
    assert bcrypt_secret(short) == short.encode("utf-8")
    long_one, other = "密" * 32, "密" * 31 + "码"  # 96 bytes each, the same first 72
    assert bcrypt_secret(long_one) != bcrypt_secret(other)
    assert len(bcrypt_secret(long_one)) <= 72


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_a_long_non_latin_password_registers_and_only_it_logs_in(core):
    accounts = core.accounts
    password = "密" * 32  # 32 characters, 96 bytes
    await accounts.register("mei", password, "1.2.3.4:5")
    assert (await accounts.login("mei", password, "1.2.3.4:6")).name == "mei"
    await refused(accounts.login("mei", "密" * 31 + "码", "1.2.3.4:7"), "bad_credentials")
    await refused(accounts.register("long", "x" * 257, "1.2.3.4:8"), "invalid_password")


@pytest_twisted.ensureDeferred
async def test_a_guest_nobody_uses_gives_its_name_up_to_a_registration(core):
    accounts = core.accounts
    guest = await accounts.guest("bob")  # e.g. a blockattack player, gone now
    account, created = await accounts.login_or_register("Bob", "pw", "h:1")
    assert created and account.id != guest.id and not account.is_guest
    renamed = await accounts.get_account(guest.id)
    assert renamed.is_guest and renamed.name.startswith("guest-")  # its history stays there
    playing = await accounts.guest("cid")
    core.presence.arrived(playing.id, "blockattack")
    await refused(accounts.register("cid", "pw", "h:2"), "name_taken")
    await refused(accounts.login_or_register("cid", "pw", "h:3"), "name_taken")
    core.presence.left(playing.id, "blockattack")
    assert (await accounts.register("cid", "pw", "h:4")).name == "cid"


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_a_guest_name_changes_hands_once_however_many_ask_at_a_time(core, monkeypatch):
    from twisted.internet import defer

    accounts = core.accounts
    await accounts.guest("dora")
    real_rename = accounts.store.rename_guest
    held = defer.Deferred()

    def slow_rename(account_id, new_name):
        return held.addCallback(lambda _: real_rename(account_id, new_name))

    monkeypatch.setattr(accounts.store, "rename_guest", slow_rename)
    first = defer.ensureDeferred(accounts.register("dora", "pw-one", "h:1"))
    second = accounts.register("dora", "pw-two", "h:2")  # while the first renames the guest
    await refused(second, "name_taken")
    held.callback(None)
    account = await first
    assert account.name == "dora" and not account.is_guest
    assert await accounts.login("dora", "pw-one", "h:3")


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_the_password_limit_is_the_configured_one_at_login_too(core):
    import attrs

    accounts = core.accounts
    accounts.settings = attrs.evolve(accounts.settings, max_password_length=1024)
    long_password = "p" * 300
    await accounts.register("lena", long_password, "h:1")
    assert (await accounts.login("lena", long_password, "h:2")).name == "lena"
    await refused(accounts.login("lena", "p" * 1025, "h:3"), "bad_credentials")


@pytest.mark.sqlite_only
@pytest_twisted.ensureDeferred
async def test_expired_and_revoked_sessions_are_purged(core):
    accounts = core.accounts
    account = await accounts.register("sam", "pw", "h:1")
    kept = await accounts.open_session(account)
    gone = await accounts.open_session(account)
    await accounts.revoke_session(gone)
    assert await accounts.purge_sessions() is None  # logged, not raised
    count = await core.database.run_interaction(
        "count", lambda cur: cur.scalar("SELECT COUNT(*) FROM sessions"))
    assert count == 1 and (await accounts.resume_session(kept)).id == account.id
    assert accounts.purger.running
