"""sd_notify and the open-files limit (the daemon-level tests are in tests/integration)."""

import os
import resource
import socket

from twisted.internet import task

from gamed.core.systemd import NotifyService, raise_open_files_limit, sd_notify


def test_sd_notify_without_systemd_is_a_no_op():
    assert sd_notify("READY=1", environ={}) is False


def test_sd_notify_abstract_socket():
    name = "gamed-test-%d" % os.getpid()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind("\0" + name)
    listener.settimeout(2)
    try:
        assert sd_notify("READY=1", environ={"NOTIFY_SOCKET": "@" + name})
        assert listener.recv(100) == b"READY=1"
    finally:
        listener.close()


def test_notify_service_ready_when_running_and_stopping(tmp_path):
    path = str(tmp_path / "notify")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(path)
    listener.settimeout(2)

    class Reactor(task.Clock):
        def callWhenRunning(self, func, *args):
            func(*args)

    service = NotifyService(Reactor(), environ={"NOTIFY_SOCKET": path})
    service.startService()
    assert b"READY=1" in listener.recv(100)
    service.stopService()
    assert b"STOPPING=1" in listener.recv(100)
    listener.close()


def test_open_files_soft_limit_is_raised_to_the_hard_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        if hard != resource.RLIM_INFINITY and soft > 64:
            resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
        before, after = raise_open_files_limit()
        assert after >= before
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == after
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
