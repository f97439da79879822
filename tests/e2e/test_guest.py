"""Guests: any SSH name that is not an account gets the anonymous lobby without a password,
can register there, and the new account then logs in over SSH with its password."""

from __future__ import annotations

import paramiko
import pytest

from conftest import ALICE, ALICE_PW, IO_TIMEOUT, ParamikoShell, cat_echo, paramiko_transport, wait_until

NEW_NAME = "carol7"
NEW_PW = "carols-new-pass"


def open_shell(t, cols=80, rows=24) -> ParamikoShell:
    chan = t.open_session(timeout=IO_TIMEOUT)
    chan.get_pty(term="xterm", width=cols, height=rows)
    chan.invoke_shell()
    return ParamikoShell(chan, cols, rows)


def test_a_guest_registers_plays_and_the_new_account_then_logs_in(server):
    t = paramiko_transport(server.port)
    try:
        t.auth_none("guest")
        assert t.is_authenticated(), "none auth for a guest name did not succeed"
        sh = open_shell(t)
        sh.wait_for("Log in", "Register a new account", "Quit")
        assert "Logged in as" not in sh.screen.text()

        sh.send(b"r")
        sh.wait_for("Name:")
        sh.send(NEW_NAME.encode() + b"\r")
        sh.wait_for("Password:")
        sh.send(NEW_PW.encode() + b"\r")
        sh.wait_for("Password again:")
        sh.send(NEW_PW.encode() + b"\r")
        sh.wait_for("E-mail")
        assert NEW_PW not in sh.screen.text(), "the password was echoed"
        sh.send(b"\r")
        sh.wait_for("Logged in as", NEW_NAME, "Play Cat")
        assert NEW_PW.encode() not in bytes(sh.screen.raw), "the password was echoed"

        sh.send(b"p")
        assert wait_until(server.children, IO_TIMEOUT), "`p` started no game process"
        sh.send(b"purr-purr\r")
        sh.wait_for("purr-purr")
        sh.screen.screen.reset()
        sh.send(b"\x04")
        sh.wait_for("Logged in as", NEW_NAME, "Play Cat")
        sh.send(b"q")
        sh.wait_eof()
    finally:
        t.close()

    listed = server.cli("user", "list").stdout
    assert NEW_NAME in listed, listed

    t = paramiko_transport(server.port)
    try:
        t.auth_password(NEW_NAME, NEW_PW)
        assert t.is_authenticated()
        cat_echo(t, b"new-account-echo")
    finally:
        t.close()

    # The new name is now an account: a wrong password and `none` are refused.
    # (One attempt per connection: see test_paramiko's same-connection retry test.)
    t = paramiko_transport(server.port)
    try:
        with pytest.raises(paramiko.AuthenticationException):
            t.auth_password(NEW_NAME, "not-carols-pass")
    finally:
        t.close()
    t = paramiko_transport(server.port)
    try:
        with pytest.raises(paramiko.BadAuthenticationType):
            t.auth_none(NEW_NAME)
    finally:
        t.close()


def test_the_guest_lobby_offers_login_register_and_quit_and_q_quits(server):
    t = paramiko_transport(server.port)
    try:
        t.auth_none("nethack")
        sh = open_shell(t)
        sh.wait_for("Log in", "Register a new account", "Quit", "Not logged in")
        sh.send(b"q")
        sh.wait_eof()
    finally:
        t.close()


def test_a_guest_may_also_use_password_auth_with_any_password(server):
    t = paramiko_transport(server.port)
    try:
        t.auth_password("wanderer", "whatever")
        assert t.is_authenticated()
        sh = open_shell(t)
        sh.wait_for("Register a new account")
        sh.send(b"q")
        sh.wait_eof()
    finally:
        t.close()


def test_a_registered_name_gets_no_guest_access(server):
    t = paramiko_transport(server.port)
    try:
        with pytest.raises(paramiko.BadAuthenticationType) as e:
            t.auth_none(ALICE)
        assert "password" in e.value.allowed_types
        assert "publickey" in e.value.allowed_types
        assert not t.is_authenticated()
    finally:
        t.close()


def test_logging_in_from_the_guest_lobby_reaches_the_account_lobby(server):
    t = paramiko_transport(server.port)
    try:
        t.auth_none("guest")
        sh = open_shell(t)
        sh.wait_for("Log in")
        sh.send(b"l")
        sh.wait_for("Name:")
        sh.send(ALICE.encode() + b"\r")
        sh.wait_for("Password:")
        sh.send(ALICE_PW.encode() + b"\r")
        sh.wait_for("Logged in as", ALICE, "Play Cat")
        assert ALICE_PW.encode() not in bytes(sh.screen.raw), "the password was echoed"
        sh.send(b"q")
        sh.wait_eof()
    finally:
        t.close()
