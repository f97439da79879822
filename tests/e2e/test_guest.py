"""Guests: any SSH name that is not an account gets the anonymous lobby without a password,
can register there, and the new account then logs in over SSH with its password."""

from __future__ import annotations

import paramiko
import pytest

from conftest import ALICE, ALICE_PW, cat_echo, open_shell, paramiko_transport
from conftest import guest_lobby, lobby_log_in, lobby_play_cat, lobby_register

NEW_NAME = "carol7"
NEW_PW = "carols-new-pass"


def test_a_guest_registers_plays_and_the_new_account_then_logs_in(server):
    with paramiko_transport(server.port) as t:
        t.auth_none("guest")
        assert t.is_authenticated(), "none auth for a guest name did not succeed"
        sh = open_shell(t)
        sh.wait_for("Log in", "Register a new account", "Quit")
        assert "Logged in as" not in sh.screen.text()

        at_email_prompt = lobby_register(sh, NEW_NAME, NEW_PW)
        assert NEW_PW not in at_email_prompt, "the password was echoed"
        sh.wait_for("Logged in as", NEW_NAME, "Play Cat")
        assert NEW_PW.encode() not in bytes(sh.screen.raw), "the password was echoed"

        lobby_play_cat(sh, server, "purr-purr", "Logged in as", NEW_NAME, "Play Cat")
        sh.send(b"q")
        sh.wait_eof()

    listed = server.cli("user", "list").stdout
    assert NEW_NAME in listed, listed

    with paramiko_transport(server.port) as t:
        t.auth_password(NEW_NAME, NEW_PW)
        assert t.is_authenticated()
        cat_echo(t, b"new-account-echo")

    # The new name is now an account: a wrong password and `none` are refused.
    # (One attempt per connection: see test_paramiko's same-connection retry test.)
    with paramiko_transport(server.port) as t, pytest.raises(paramiko.AuthenticationException):
        t.auth_password(NEW_NAME, "not-carols-pass")
    with paramiko_transport(server.port) as t, pytest.raises(paramiko.BadAuthenticationType):
        t.auth_none(NEW_NAME)


def test_the_guest_lobby_offers_login_register_and_quit_and_q_quits(server):
    with guest_lobby(server.port, "nethack") as sh:
        sh.wait_for("Log in", "Register a new account", "Quit", "Not logged in")
        sh.send(b"q")
        sh.wait_eof()


def test_a_guest_may_also_use_password_auth_with_any_password(server):
    with paramiko_transport(server.port) as t:
        t.auth_password("wanderer", "whatever")
        assert t.is_authenticated()
        sh = open_shell(t)
        sh.wait_for("Register a new account")
        sh.send(b"q")
        sh.wait_eof()


def test_a_registered_name_gets_no_guest_access(server):
    with paramiko_transport(server.port) as t:
        with pytest.raises(paramiko.BadAuthenticationType) as e:
            t.auth_none(ALICE)
        assert "password" in e.value.allowed_types
        assert "publickey" in e.value.allowed_types
        assert not t.is_authenticated()


def test_logging_in_from_the_guest_lobby_reaches_the_account_lobby(server):
    with guest_lobby(server.port, "guest") as sh:
        sh.wait_for("Log in")
        lobby_log_in(sh, ALICE, ALICE_PW)
        sh.wait_for("Logged in as", ALICE, "Play Cat")
        assert ALICE_PW.encode() not in bytes(sh.screen.raw), "the password was echoed"
        sh.send(b"q")
        sh.wait_eof()
