"""ssh-audit (3.9) against the server's algorithm lists.

ssh-audit's exit codes (ssh_audit/exitcodes.py): 0 nothing flagged, 1 connection error,
2 warnings, 3 failures. The JSON mode (`-j`) carries, per algorithm, the notes by level
("fail", "warn", "info"), plus the CVE list; those are what is checked here.
"""

from __future__ import annotations

import json
import subprocess

from conftest import PQ_KEX, SERVER_CIPHERS, SERVER_KEX

AUDIT_TIMEOUT = 300
GOOD, CONNECTION_ERROR, WARNING, FAILURE = 0, 1, 2, 3


def audit_json(port: int) -> tuple[int, dict]:
    r = subprocess.run(
        ["ssh-audit", "-j", "-n", "-t", "30", "-p", str(port), "127.0.0.1"],
        capture_output=True,
        text=True,
        timeout=AUDIT_TIMEOUT,
    )
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("{")), None)
    assert line is not None, f"no JSON from ssh-audit (exit {r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r.returncode, json.loads(line)


def audit_text(port: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ssh-audit", "-n", "-t", "30", "-p", str(port), "127.0.0.1"],
        capture_output=True,
        text=True,
        timeout=AUDIT_TIMEOUT,
    )


def flagged(report: dict) -> list[tuple[str, str, str, str]]:
    """(section, algorithm, level, note) for every fail/warn note."""
    out = []
    for section in ("kex", "key", "enc", "mac"):
        for entry in report.get(section, []):
            for level in ("fail", "warn"):
                for note in entry.get("notes", {}).get(level, []) or []:
                    out.append((section, entry["algorithm"], level, note))
    return out


def real_kex_names(report: dict) -> list[str]:
    # Pseudo-algorithms (ext-info-s, kex-strict-s-v00@openssh.com) are listed with the kex.
    return [
        e["algorithm"]
        for e in report.get("kex", [])
        if not e["algorithm"].startswith(("ext-info-", "kex-strict-"))
    ]


def test_default_algorithms_have_no_failures_and_only_not_post_quantum_warnings(server):
    rc, report = audit_json(server.port)
    assert rc in (GOOD, WARNING), f"ssh-audit exit {rc}: {flagged(report)}"
    assert sorted(real_kex_names(report)) == sorted(SERVER_KEX)
    assert [e["algorithm"] for e in report.get("key", [])] == ["ssh-ed25519"]
    assert sorted(e["algorithm"] for e in report.get("enc", [])) == sorted(SERVER_CIPHERS)
    assert report.get("mac", []) == [] or all(
        not e.get("notes", {}).get("fail") for e in report["mac"]
    )
    assert report.get("cves", []) == [], report.get("cves")
    problems = []
    for section, alg, level, note in flagged(report):
        pq_warning = (
            section == "kex"
            and level == "warn"
            and alg.startswith("curve25519-sha256")
            and "post-quantum" in note
        )
        if not pq_warning:
            problems.append((section, alg, level, note))
    assert problems == [], problems
    kex_strict = [e for e in report["kex"] if e["algorithm"] == "kex-strict-s-v00@openssh.com"]
    assert kex_strict, "server does not advertise strict kex (Terrapin countermeasure)"


def test_post_quantum_only_kex_list_passes_ssh_audit_clean(server_factory):
    srv = server_factory("pq", ssh_overrides={"kex": PQ_KEX}).start()
    rc, report = audit_json(srv.port)
    assert sorted(real_kex_names(report)) == sorted(PQ_KEX)
    assert flagged(report) == [], flagged(report)
    assert report.get("cves", []) == []
    assert rc == GOOD, f"ssh-audit exit {rc}"
    text = audit_text(srv.port)
    assert text.returncode == GOOD, text.stdout
    assert "(fail)" not in text.stdout and "(warn)" not in text.stdout, text.stdout
