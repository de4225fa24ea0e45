"""No password, session token or password hash ever reaches the daemon's log."""

import re

import pytest

from .harness import Daemon, Lines


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_a_full_session_logs_no_secret(tmp_path, fmt):
    daemon = Daemon(tmp_path, '[logging]\nformat = "%s"\nlevel = "debug"\n' % fmt).start()
    password = "Pw-sekrit-%s-12345" % fmt
    secrets_seen = [password]
    try:
        client = Lines(daemon.ports["uttt_tcp"])
        client.send({"type": "login", "data": {"name": "logtest" + fmt, "pw": password}})
        reply = client.wait_for(lambda m: m.get("type") == "login_response")
        assert reply["data"]["success"] is True, reply
        token = reply["data"]["id"]
        secrets_seen.append(token)
        client.send({"type": "login", "data": {"name": "logtest" + fmt, "pw": "wrong" + password}})
        client.close()
        again = Lines(daemon.ports["uttt_tcp"])
        again.send({"type": "reconnect", "data": {"id": token}})
        assert again.wait_for(lambda m: m.get("type") == "reconnect_response")["data"]["success"]
        again.send({"type": "bogus", "data": {"pw": password}})
        again.recv()
        again.close()
    finally:
        code = daemon.stop()
    log = daemon.log()
    assert "uttt" in log and code is not None
    for secret in secrets_seen:
        assert secret not in log, "a secret reached the log"
    assert not re.search(r"\$2[aby]\$\d\d\$", log), "a bcrypt hash reached the log"
