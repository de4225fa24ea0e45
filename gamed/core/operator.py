"""What an operator does to accounts, shared by `gamectl` and the /admin console: one
function per action, each logging who did it, so both tools act exactly alike.

A ban also closes the account's live connections in this process (`core.live`): from
the console that is the daemon's own; gamectl, a separate process, has none to close, so
there the ban takes effect at the player's next login (its sessions are revoked at once).
"""

from __future__ import annotations

from typing import Optional

from twisted.logger import Logger

log = Logger(namespace="gamed.operator")

#: the actions the console offers (gamectl also has create and delete)
CONSOLE_ACTIONS = {"ban": "ban (and disconnect)", "unban": "lift a ban",
                   "revoke": "revoke sessions (log out everywhere)",
                   "passwd": "reset the password"}


class OperatorError(Exception):
    """The action cannot be done; the message is for the operator."""


async def find(core, name: str):
    account = await core.accounts.find_account(name)
    if account is None:
        raise OperatorError("no account named %r" % name)
    return account


async def create(core, name: str, password: str, by: str) -> str:
    account = await core.accounts.register(name, password, "operator")
    return _done(by, "create", account.name, "created account %d %s" % (account.id,
                                                                          account.name))


async def set_password(core, name: str, password: Optional[str], by: str) -> str:
    accounts = core.accounts
    account = await find(core, name)
    accounts.check_password_rule(password)
    hashed = await accounts.hash_password(password)
    await accounts.store.set_password_hash(account.id, hashed)
    await accounts.revoke_sessions(account.id)
    return _done(by, "passwd", account.name,
                 "password of %s changed; its sessions are revoked" % account.name)


async def ban(core, name: str, by: str) -> str:
    account = await find(core, name)
    await core.accounts.store.set_banned(account.id, True)
    revoked = await core.accounts.revoke_sessions(account.id)
    closed = core.live.disconnect(account.id)
    text = "banned %s (%d sessions revoked)" % (account.name, revoked)
    if closed:
        text += ", %d live connection%s closed" % (closed, "" if closed == 1 else "s")
    return _done(by, "ban", account.name, text)


async def unban(core, name: str, by: str) -> str:
    account = await find(core, name)
    await core.accounts.store.set_banned(account.id, False)
    return _done(by, "unban", account.name, "unbanned %s" % account.name)


async def revoke_sessions(core, name: str, by: str) -> str:
    account = await find(core, name)
    revoked = await core.accounts.revoke_sessions(account.id)
    return _done(by, "revoke", account.name,
                 "revoked %d sessions of %s" % (revoked, account.name))


async def delete(core, name: str, by: str) -> str:
    account = await find(core, name)
    await core.accounts.store.delete(account.id)
    return _done(by, "delete", account.name, "deleted %s" % account.name)


async def end_match(core, game: str, match_id: str, by: str) -> str:
    await core.live.end_match(game, match_id)
    return _done(by, "end_match", "%s/%s" % (game, match_id),
                 "ended %s match %s" % (game, match_id))


def _done(by: str, action: str, target: str, text: str) -> str:
    log.info("operator {by}: {action} {target}: {result}", by=by, action=action,
             target=target, result=text)
    return text
