"""/play/uttt and /admin in two headless Chromium browsers against the real daemon: both
log in, one befriends and invites the other, they play a whole game by clicking, and the
result and the new ratings show on both pages; then one logs in to the operator console
and bans the other, whose open page is disconnected at once; a POST without the CSRF
token is refused."""

from __future__ import annotations

import sqlite3

import bcrypt
import pytest
from integration.harness import Daemon

from gamed.core.accounts import bcrypt_secret
from gamed.uttt import rules

from .browser import close_browser, console_errors, make_browser, shot, wait_for

ADMIN_PASSWORD = "console-password"

# the shortest win for player A (17 moves), as (sub_x, sub_y, x, y)
SHORT_GAME = [(0, 2, 1, 1), (1, 1, 1, 2), (1, 2, 0, 0), (0, 0, 1, 2), (1, 2, 0, 1),
              (0, 1, 0, 2), (0, 2, 1, 2), (1, 2, 2, 2), (2, 2, 2, 1), (2, 1, 2, 2),
              (2, 2, 2, 2), (2, 2, 1, 2), (1, 2, 0, 2), (0, 2, 0, 2), (0, 2, 1, 0),
              (1, 0, 2, 2), (2, 2, 2, 0)]


@pytest.fixture(scope="module")
def players(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("play")
    hashed = bcrypt.hashpw(bcrypt_secret(ADMIN_PASSWORD), bcrypt.gensalt(4)).decode()
    daemon = Daemon(tmp, '[http]\nadmin_password_hash = "%s"\n' % hashed).start()
    browsers = []
    try:
        browsers.append(make_browser(1000, 900))
        browsers.append(make_browser(420, 900))  # a phone's width
        yield daemon, browsers, tmp
    finally:
        for browser in browsers:
            close_browser(browser)
        daemon.stop()


def text(browser, selector):
    return browser.execute_script(
        "var e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
        selector)


def visible(browser, element_id):
    return browser.execute_script(
        "var e = document.getElementById(arguments[0]); return !!e && !e.hidden;", element_id)


def log_in(browser, daemon, name, password):
    from selenium.webdriver.common.by import By

    browser.get("http://127.0.0.1:%d/play/uttt" % daemon.ports["http"])
    wait_for(browser, lambda d: visible(d, "login-card"), "no login form")
    browser.find_element(By.ID, "login-name").send_keys(name)
    browser.find_element(By.ID, "login-password").send_keys(password)
    browser.find_element(By.ID, "login-button").click()
    wait_for(browser, lambda d: visible(d, "lobby-card") and text(d, "#me") == name,
             "%s did not get to the lobby" % name)


def cell(move):
    sub_x, sub_y, x, y = move
    return '#board button.cell[data-sub="%d"][data-x="%d"][data-y="%d"]' % (
        sub_y * 3 + sub_x, x, y)


def test_two_browsers_play_a_whole_game(players):
    from selenium.webdriver.common.by import By

    daemon, (alice, bruno), tmp = players
    log_in(alice, daemon, "alice", "pw-alice")
    log_in(bruno, daemon, "bruno", "pw-bruno")
    wait_for(alice, lambda d: (text(d, "#elo") or "").startswith("Elo 1000"), "no Elo shown")
    # friends: alice adds bruno, both lists show the other online
    alice.find_element(By.ID, "friend-name").send_keys("Bruno")
    alice.find_element(By.CSS_SELECTOR, "#friend-form button").click()
    wait_for(alice, lambda d: "online" in (text(d, '#friends li[data-friend="bruno"]') or ""),
             "bruno not in alice's friends")
    wait_for(bruno, lambda d: text(d, '#friends li[data-friend="alice"]') is not None,
             "alice not in bruno's friends")
    alice.find_element(By.CSS_SELECTOR, '#friends li[data-friend="bruno"] button').click()
    wait_for(bruno, lambda d: "alice invited you" in (text(d, "#notice") or ""), "no invite")
    for browser in (alice, bruno):
        wait_for(browser, lambda d: d.execute_script(
            "return document.querySelectorAll('#board button.cell').length") == 81, "no board")
    assert "Your move" in text(alice, "#play-status")
    assert "Waiting for alice" in text(bruno, "#play-status")
    board = rules.new_board()
    for index, move in enumerate(SHORT_GAME):
        mover = (alice, bruno)[index % 2]
        mark = "XO"[index % 2]
        wait_for(mover, lambda d: d.execute_script(
            "var e = document.querySelector(arguments[0]); return !!e && !e.disabled",
            cell(move)), "move %d not playable" % index)
        mover.find_element(By.CSS_SELECTOR, cell(move)).click()
        board = rules.play(board, board.to_move, rules.Move(*move))
        for browser in (alice, bruno):
            wait_for(browser, lambda d: text(d, cell(move)) == mark,
                     "move %d not shown" % index)
        if index == 3:
            shot(bruno, tmp, "play-phone")
    assert board.winner == rules.MARK_A
    wait_for(alice, lambda d: "You won!" in text(d, "#play-status"), "alice not told")
    wait_for(bruno, lambda d: "alice won." in text(d, "#play-status"), "bruno not told")
    wait_for(alice, lambda d: (text(d, "#elo") or "").startswith("Elo 1010"), "no new Elo")
    wait_for(bruno, lambda d: (text(d, "#elo") or "").startswith("Elo 990"), "no new Elo")
    shown = alice.execute_script(
        "return Array.from(document.querySelectorAll('#board button.cell'))"
        ".map(function (c) { return c.textContent; })")
    expected = ["", "X", "O"]
    assert shown == [expected[board.cells[(sy * 3 + y) * 9 + sx * 3 + x]]
                     for sy in range(3) for sx in range(3) for y in range(3) for x in range(3)]
    shot(alice, tmp, "play")
    assert not console_errors(alice) and not console_errors(bruno)


def test_a_guest_plays_without_an_account(players):
    from selenium.webdriver.common.by import By

    daemon, (alice, _), tmp = players
    alice.find_element(By.ID, "logout-button").click()
    wait_for(alice, lambda d: visible(d, "login-card"), "no login form after logging out")
    alice.find_element(By.ID, "login-name").clear()
    alice.find_element(By.ID, "login-name").send_keys("visitor")
    alice.find_element(By.ID, "guest-button").click()
    wait_for(alice, lambda d: text(d, "#me") == "visitor (temporary)", "no guest session")
    assert text(alice, "#elo") == "unranked" and not visible(alice, "friend-form")


def banned(tmp, name):
    with sqlite3.connect(str(tmp / "gamed.sqlite3")) as db:
        return bool(db.execute("SELECT banned FROM accounts WHERE name_key = ?",
                               (name,)).fetchone()[0])


def test_admin_bans_a_player_whose_page_is_open(players):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    daemon, (admin, bruno), tmp = players
    assert visible(bruno, "lobby-card") and text(bruno, "#me") == "bruno"  # still playing
    admin.get("http://127.0.0.1:%d/admin" % daemon.ports["http"])
    wait_for(admin, lambda d: d.find_elements(By.ID, "admin-login"), "no login page")
    admin.find_element(By.NAME, "who").send_keys("olga")
    admin.find_element(By.NAME, "password").send_keys(ADMIN_PASSWORD)
    admin.find_element(By.CSS_SELECTOR, "#admin-login button").click()
    wait_for(admin, lambda d: d.find_elements(By.ID, "users"), "no console after login")
    assert "bruno" in admin.find_element(By.ID, "online").text
    assert "uttt" in admin.find_element(By.ID, "connections").text
    shot(admin, tmp, "admin")
    form = admin.find_element(By.ID, "user-action")
    form.find_element(By.NAME, "name").send_keys("bruno")
    Select(form.find_element(By.NAME, "action")).select_by_value("ban")
    form.find_element(By.TAG_NAME, "button").click()
    wait_for(admin, lambda d: "banned bruno" in (text(d, "main") or ""), "no confirmation")
    assert "1 live connection closed" in admin.find_element(By.CSS_SELECTOR, ".flash").text
    wait_for(bruno, lambda d: "Disconnected" in text(d, "#play-status"),
             "bruno's page was not disconnected")
    assert banned(tmp, "bruno")
    bruno.find_element(By.ID, "reconnect-button").click()  # the session is revoked
    wait_for(bruno, lambda d: visible(d, "login-card"), "the revoked session resumed")
    bruno.find_element(By.ID, "login-name").clear()
    bruno.find_element(By.ID, "login-name").send_keys("bruno")
    bruno.find_element(By.ID, "login-password").send_keys("pw-bruno")
    bruno.find_element(By.ID, "login-button").click()
    wait_for(bruno, lambda d: "banned" in (text(d, "#notice") or ""),
             lambda: "a banned login passed: %r" % text(bruno, "#notice"))
    shot(bruno, tmp, "banned")


def test_a_console_post_without_the_csrf_token_is_refused(players):
    daemon, (admin, _), tmp = players
    status = admin.execute_async_script(
        "var done = arguments[arguments.length - 1];"
        "fetch('/admin/users', {method: 'POST', body: new URLSearchParams("
        "{name: 'alice', action: 'ban'})}).then(function (r) { done(r.status); });")
    assert status == 403 and not banned(tmp, "alice")
    with_token = admin.execute_async_script(  # the same request with the page's token passes
        "var done = arguments[arguments.length - 1];"
        "var token = document.querySelector('#user-action [name=csrf]').value;"
        "fetch('/admin/users', {method: 'POST', body: new URLSearchParams("
        "{name: 'alice', action: 'revoke', csrf: token})}).then(function (r) {"
        " done(r.status); });")
    assert with_token == 200  # fetch followed the 303 back to the console
