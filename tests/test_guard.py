"""The access checks' pieces that need no daemon: Host parsing, sessions, the lockout."""

from __future__ import annotations

import pytest

from bandix.api import guard
from bandix.api.guard import Access, Failures, host_allowed, host_name, is_local, session_valid, session_value

TOKEN = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(("header", "name"), [
    ("192.168.1.1:8686", "192.168.1.1"), ("Router.LAN.", "router.lan"), ("router.lan:80", "router.lan"),
    ("[fd00::1]:8686", "fd00::1"), ("[::1]", "::1"), ("fd00::1", "fd00::1"), ("", ""),
])
def test_host_name(header, name):
    assert host_name(header) == name


@pytest.mark.parametrize(("header", "access", "allowed"), [
    ("localhost:8686", Access(), True), ("app.localhost", Access(), True), ("127.0.0.2", Access(), True),
    ("[::1]:8686", Access(), True), ("192.168.1.1", Access(), False),
    ("192.168.1.1", Access(listen="192.168.1.1"), True), ("10.0.0.1", Access(listen="0.0.0.0"), True),
    ("router.lan", Access(listen="0.0.0.0"), False),
    ("router.lan:8686", Access(allowed_hosts=frozenset({"router.lan"})), True),
    ("localhost.attacker.example", Access(), False), ("127.0.0.1.nip.io", Access(), False),
])
def test_host_allowed(header, access, allowed):
    assert host_allowed(header, access) is allowed


def test_local_is_loopback_or_the_listen_address_never_a_wildcard():
    assert is_local("127.0.0.1", Access()) and is_local("::1", Access()) and is_local("::ffff:127.0.0.1", Access())
    assert is_local("192.168.1.1", Access(listen="192.168.1.1"))
    assert not is_local("192.168.1.10", Access(listen="192.168.1.1"))
    assert not is_local("0.0.0.0", Access(listen="0.0.0.0")) and not is_local("", Access())


def test_a_session_is_valid_until_it_expires_and_only_for_its_token():
    value = session_value(TOKEN, 2_000)
    assert session_valid(value, TOKEN, 1_999)
    assert not session_valid(value, TOKEN, 2_001)
    assert not session_valid(value, TOKEN[::-1], 1_000)
    assert not session_valid(value, "", 1_000)
    assert not session_valid("3000." + value.split(".")[1], TOKEN, 1_000)  # a later expiry, the old signature
    assert not session_valid("garbage", TOKEN, 1_000)


def test_failures_lock_an_address_out_for_the_rest_of_the_window(monkeypatch):
    f = Failures()
    for t in range(guard.FAILURES_ALLOWED - 1):
        f.add("10.0.0.5", 100.0 + t)
    assert f.locked_for("10.0.0.5", 104.0) == 0
    f.add("10.0.0.5", 104.0)
    assert f.locked_for("10.0.0.5", 104.0) == pytest.approx(guard.FAILURE_WINDOW_S - 4)  # from the first
    assert f.locked_for("10.0.0.6", 104.0) == 0
    assert f.locked_for("10.0.0.5", 100.0 + guard.FAILURE_WINDOW_S + 0.5) == 0  # the first one aged out
    monkeypatch.setattr(guard, "FAILURE_ADDRESSES", 3)
    for n in range(5):
        f.add(f"10.0.1.{n}", 200.0)
    assert f.locked_for("10.0.0.5", 200.0) == 0  # forgotten: at most FAILURE_ADDRESSES are kept
