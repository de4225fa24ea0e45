"""The public pages in headless Chromium against the real daemon: the leaderboard after
real uttt matches, a player page with its chart, a match page with the final board, live
counts that change without a reload, and names that are markup shown as text."""

from __future__ import annotations

import json
import urllib.request

import pytest
from integration.harness import Daemon

from .browser import close_browser, console_errors, make_browser, shot, wait_for
from .players import UtttPlayer, novaglide_login, play_uttt

EVIL = "<img src=x onerror=alert(1)>"  # 28 characters: the core's limit is 32


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The daemon with three finished uttt matches, and one browser for the module."""
    tmp = tmp_path_factory.mktemp("pages")
    daemon = Daemon(tmp).start()
    browser = None
    try:
        browser = make_browser()
        ann, bob, cyd = (UtttPlayer(daemon.ports["uttt_tcp"], name)
                         for name in ("ann", "bob", "cyd"))
        finals = [play_uttt(ann, bob, 1), play_uttt(bob, cyd, 2), play_uttt(cyd, ann, 3)]
        evil = novaglide_login(daemon.ports["novaglide"], EVIL)
        evil.close()
        for player in (ann, bob, cyd):
            player.close()
        yield daemon, browser, tmp, finals
    finally:
        if browser is not None:
            close_browser(browser)
        daemon.stop()


def api(daemon, path):
    url = "http://127.0.0.1:%d%s" % (daemon.ports["http"], path)
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def url(daemon, path):
    return "http://127.0.0.1:%d%s" % (daemon.ports["http"], path)


def test_leaderboard_after_real_matches(site):
    from selenium.webdriver.common.by import By

    daemon, browser, tmp, _ = site
    browser.get(url(daemon, "/"))
    card = browser.find_element(By.ID, "game-uttt")
    expected = api(daemon, "/api/leaderboard/uttt")["players"]
    rows = [row.text.split() for row in card.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (str(p["rank"]), p["name"], "%.0f" % p["rating"]) for p in expected]
    assert len(rows) == 3
    shot(browser, tmp, "home")
    browser.find_element(By.LINK_TEXT, "Ultimate tic-tac-toe").click()
    wait_for(browser, lambda d: d.find_elements(By.ID, "leaderboard"))
    cells = [[td.text for td in row.find_elements(By.TAG_NAME, "td")]
             for row in browser.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr")]
    assert cells == [[str(p["rank"]), p["name"], "%.0f" % p["rating"], str(p["wins"]),
                      str(p["losses"]), str(p["draws"])] for p in expected]
    shot(browser, tmp, "leaderboard")
    assert not console_errors(browser)


def test_player_page_with_its_chart_and_a_match_page(site):
    from selenium.webdriver.common.by import By

    daemon, browser, tmp, finals = site
    browser.get(url(daemon, "/players/ann"))
    chart = browser.find_element(By.ID, "rating-chart")
    assert chart.size["width"] > 300 and chart.size["height"] > 100  # drawn, not collapsed
    paths = chart.find_elements(By.CSS_SELECTOR, "path.series.uttt")
    assert len(paths) == 1 and paths[0].get_attribute("d").count("L") == 1  # two matches
    history = browser.find_elements(By.CSS_SELECTOR, "#history tbody tr")
    assert len(history) == 2
    assert {row.find_elements(By.TAG_NAME, "td")[2].text for row in history} == {"bob", "cyd"}
    shot(browser, tmp, "player")
    history[0].find_element(By.PARTIAL_LINK_TEXT, "#").click()
    wait_for(browser, lambda d: d.find_elements(By.ID, "final-board"))
    cells = browser.find_elements(By.CSS_SELECTOR, "#final-board .cell")
    final = finals[2]  # the newest match: cyd (X) against ann (O)
    marks = {0: "", 1: "X", 2: "O"}
    shown = [cell.text for cell in cells]
    # the page draws sub-boards in reading order, each row by row
    expected = [marks[final["complete_field"][sy * 3 + y][sx * 3 + x]]
                for sy in range(3) for sx in range(3) for y in range(3) for x in range(3)]
    assert shown == expected
    shot(browser, tmp, "match")


def test_live_counts_change_without_a_reload(site):
    from selenium.webdriver.common.by import By

    daemon, browser, tmp, _ = site
    browser.get(url(daemon, "/"))
    online = browser.find_element(By.CSS_SELECTOR, '#game-uttt [data-live="online"]')
    assert online.text == "0"
    browser.execute_script("window.notReloaded = true")
    player = UtttPlayer(daemon.ports["uttt_tcp"], "dee")
    try:
        wait_for(browser, lambda d: online.text == "1", "the online count did not change")
        assert browser.execute_script("return window.notReloaded") is True
    finally:
        player.close()
    wait_for(browser, lambda d: online.text == "0", "the online count did not go back")


def test_markup_in_names_is_shown_as_text(site):
    from selenium.webdriver.common.by import By

    daemon, browser, tmp, _ = site
    browser.get(url(daemon, "/players/" + urllib.request.quote(EVIL, safe="")))
    assert browser.find_element(By.CSS_SELECTOR, "h1.player-name").text.startswith(EVIL)
    assert not browser.find_elements(By.CSS_SELECTOR, "main img")  # (an alert would raise)
    search = browser.find_element(By.CSS_SELECTOR, "form.search input")
    search.send_keys(EVIL + "\n")  # the search form finds it too
    wait_for(browser, lambda d: "offline" in d.find_element(By.TAG_NAME, "h1").text)
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith(EVIL)
    assert not browser.find_elements(By.CSS_SELECTOR, "main img")
