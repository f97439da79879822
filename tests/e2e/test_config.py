"""A bad configuration stops `serve` before it listens: exit code 2 and a message naming the key."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import START_TIMEOUT, Server


def run_serve(binary, config_path, env_extra=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUNGEONGATE_")}
    env.update(env_extra or {})
    try:
        return subprocess.run(
            [str(binary), "serve", "--config", str(config_path)],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"serve kept running with a bad config; stdout: {e.stdout!r}")


def base_config(dg_bin, scripts_dir, tmp_path) -> tuple[Server, dict]:
    s = Server(dg_bin, tmp_path / "cfg", scripts_dir)
    s.port, s.http_port = 1, 2  # never bound: every case here must fail validation first
    return s, s.config_dict()


def mutate(cfg: dict, path: str, value) -> dict:
    cfg = json.loads(json.dumps(cfg))
    node = cfg
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node[k]
    last = keys[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return cfg


CASES = [
    # (id, dotted path to set, value, text the message must contain)
    ("listen-not-an-address", "ssh.listen", "nope", "ssh.listen"),
    ("http-listen-not-an-address", "http.listen", "127.0.0.1:notaport", "http.listen"),
    ("unknown-kex", "ssh.kex", ["curve25519-sha256", "diffie-hellman-group1-sha1"], "ssh.kex"),
    ("unknown-cipher", "ssh.ciphers", ["aes128-cbc"], "ssh.ciphers"),
    ("empty-kex", "ssh.kex", [], "ssh.kex"),
    ("unknown-top-level-key", "bogus_key", 1, "bogus_key"),
    ("unknown-ssh-key", "ssh.listne", "127.0.0.1:1", "listne"),
    ("relative-game-command", "games.0.command", "cat", "games[0].command"),
    ("bad-game-id", "games.0.id", "Not Valid", "games[0].id"),
    ("argon2-memory-too-small", "password.memory_kib", 1, "password"),
    ("wrong-type", "ssh.max_auth_tries", "many", "ssh.max_auth_tries"),
]


@pytest.mark.parametrize("path,value,needle", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_bad_config_exits_2_and_names_the_key(dg_bin, scripts_dir, tmp_path, path, value, needle):
    s, cfg = base_config(dg_bin, scripts_dir, tmp_path)
    s.config_path.write_text(json.dumps(mutate(cfg, path, value), indent=2))
    r = run_serve(dg_bin, s.config_path)
    assert r.returncode == 2, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    assert needle in r.stderr + r.stdout, f"message does not name {needle!r}: {r.stderr}"
    assert "listening" not in r.stdout


def test_the_contract_example_ssh_listen_nope_is_refused(dg_bin, tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(
        "data_dir: " + json.dumps(str(tmp_path / "data")) + "\n"
        'ssh:\n  listen: "nope"\n'
        'http:\n  listen: "127.0.0.1:0"\n'
        "games:\n  - { id: cat, name: \"Cat\", command: /bin/cat }\n"
    )
    r = run_serve(dg_bin, cfg)
    assert r.returncode == 2, f"exit {r.returncode}\nstderr: {r.stderr}"
    assert "ssh.listen" in r.stderr + r.stdout, r.stderr


def test_a_bad_environment_override_exits_2_and_names_the_key(dg_bin, scripts_dir, tmp_path):
    s, cfg = base_config(dg_bin, scripts_dir, tmp_path)
    s.config_path.write_text(json.dumps(cfg, indent=2))
    r = run_serve(dg_bin, s.config_path, {"DUNGEONGATE_SSH_LISTEN": "nope"})
    assert r.returncode == 2, f"exit {r.returncode}\nstderr: {r.stderr}"
    assert "ssh.listen" in r.stderr + r.stdout or "DUNGEONGATE_SSH_LISTEN" in r.stderr, r.stderr


def test_yaml_that_does_not_parse_exits_2(dg_bin, tmp_path):
    cfg = tmp_path / "broken.yaml"
    cfg.write_text("ssh: [unclosed\n")
    r = run_serve(dg_bin, cfg)
    assert r.returncode == 2, f"exit {r.returncode}\nstderr: {r.stderr}"
    assert r.stderr.strip()


def test_a_missing_config_file_is_an_error_naming_the_file(dg_bin, tmp_path):
    missing = tmp_path / "does-not-exist.yaml"
    r = run_serve(dg_bin, missing)
    assert r.returncode != 0
    assert "does-not-exist.yaml" in r.stderr + r.stdout, r.stderr


def test_a_file_with_only_the_listeners_and_data_dir_serves_the_default_lobby(dg_bin, tmp_path):
    """A newcomer's config: everything else comes from the built-in defaults, and a real
    client gets the default lobby."""
    import signal

    from conftest import IO_TIMEOUT, TermProc, free_port, server_env, ssh_argv, wait_until

    port, http_port = free_port(), free_port()
    data = tmp_path / "data"
    cfg = tmp_path / "minimal.yaml"
    cfg.write_text(
        f'ssh: {{ listen: "127.0.0.1:{port}" }}\n'
        f'http: {{ listen: "127.0.0.1:{http_port}" }}\n'
        f"data_dir: {data}\n"
        # The default games run as `games` when root; as anyone else they would need this.
        + ("games_as_server_user: true\n" if os.geteuid() != 0 else "")
    )
    log = open(tmp_path / "serve.log", "wb")
    p = subprocess.Popen([str(dg_bin), "serve", "--config", str(cfg)], env=server_env(),
                         stdout=log, stderr=subprocess.STDOUT)
    try:
        import socket

        def up():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                return None

        assert wait_until(up, START_TIMEOUT), (tmp_path / "serve.log").read_text()
        with TermProc(ssh_argv(port, "newcomer")) as guest:
            guest.wait_for("Not logged in.", "r) Register")
            guest.wait_for("terminal games over ssh")  # the default banner
            guest.send(b"q")
            guest.wait_eof()
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=IO_TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
        log.close()
