//! `dungeongate check-config` on files written here: a file needs only the keys it changes;
//! the checks report what `serve` would find (games the lobby shows as unavailable, games
//! that cannot start, a data directory that cannot be made) and leave nothing behind; a bad
//! value is reported with its key, its line and the value as written.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// `dungeongate check-config --config FILE` in `cwd`, with no `DUNGEONGATE_*` variables
/// (the server reads those as overrides; cargo may pass some of its own).
fn check_config(config: &Path, cwd: &Path) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dungeongate"));
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(|n| n.starts_with("DUNGEONGATE_")) {
            cmd.env_remove(name);
        }
    }
    cmd.arg("check-config")
        .arg("--config")
        .arg(config)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .expect("run dungeongate check-config")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const AMULET: &str = "{ id: amulet, name: Amulet, command: \"builtin:amulet\" }";

#[test]
fn a_file_with_only_the_keys_it_changes_checks_clean_and_nothing_is_created() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    let cfg = t.path().join("cfg.yaml");
    std::fs::write(
        &cfg,
        format!(
            "ssh: {{ listen: \"127.0.0.1:2022\" }}\ndata_dir: {:?}\ngames: [{AMULET}]\n",
            data.display().to_string()
        ),
    )
    .unwrap();
    let out = check_config(&cfg, t.path());
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.starts_with("configuration is valid: ssh 127.0.0.1:2022, http 127.0.0.1:8085,"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "ok: data_dir: {} does not exist yet; it will be created in {}",
            data.display(),
            t.path().display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("ok: game amulet: Amulet: built in"),
        "{stdout}"
    );
    assert!(stdout.ends_with("no problems found\n"), "{stdout}");
    assert!(!data.exists(), "check-config made the data directory");
}

#[test]
fn games_the_lobby_will_show_unavailable_or_cannot_start_are_warnings() {
    let t = tempfile::tempdir().unwrap();
    let not_executable = t.path().join("game.sh");
    std::fs::write(&not_executable, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&not_executable, std::fs::Permissions::from_mode(0o644)).unwrap();
    let cfg = t.path().join("cfg.yaml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir: {:?}\ngames_as_server_user: true\ngames:\n\
             \x20 - {{ id: gone, name: Gone, command: /nonexistent/dungeongate-test-game }}\n\
             \x20 - {{ id: noexec, name: Noexec, command: {:?} }}\n\
             \x20 - {{ id: cat, name: Cat, command: /bin/cat }}\n",
            t.path().join("data").display().to_string(),
            not_executable.display().to_string()
        ),
    )
    .unwrap();
    let out = check_config(&cfg, t.path());
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(
            "warning: game gone: Gone will show as unavailable in the lobby: \
             /nonexistent/dungeongate-test-game does not exist\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("warning: game noexec: Noexec shows in the lobby but will fail to start:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ok: game cat: Cat: /bin/cat can be run by"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("2 warnings: serve would start\n"),
        "{stdout}"
    );
}

#[test]
fn a_data_dir_serve_could_not_make_is_an_error_with_status_1() {
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("plain-file");
    std::fs::write(&file, "").unwrap();
    let cfg = t.path().join("cfg.yaml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir: {:?}\ngames: [{AMULET}]\n",
            file.join("data").display().to_string()
        ),
    )
    .unwrap();
    let out = check_config(&cfg, t.path());
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!(
            "error: data_dir: {} cannot be created: {} is not a directory\n",
            file.join("data").display(),
            file.display()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("serve would not start"), "{stdout}");
}

#[test]
fn an_empty_file_is_a_valid_configuration() {
    let t = tempfile::tempdir().unwrap();
    let cfg = t.path().join("empty.yaml");
    std::fs::write(&cfg, "").unwrap();
    let out = check_config(&cfg, t.path());
    let stdout = text(&out.stdout);
    // Whether serve could start here depends on who runs the test (the default games include
    // NetHack, an external program); that the file is valid does not.
    assert_ne!(out.status.code(), Some(2), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.starts_with("configuration is valid: ssh 0.0.0.0:2222, http 127.0.0.1:8085,"),
        "{stdout}"
    );
    assert!(stdout.contains("game nethack"), "{stdout}");
    assert!(!t.path().join("data").exists());
}

#[test]
fn a_bad_value_exits_2_naming_the_key_the_line_and_the_value_as_written() {
    let t = tempfile::tempdir().unwrap();
    let cfg = t.path().join("bad.yaml");
    for (yaml, message) in [
        (
            "limits:\n  max_connections: lots\n",
            "config key limits.max_connections: expected a whole number (0 or more), got the \
             string \"lots\"",
        ),
        (
            "cores: true\n",
            "config key cores: expected auto or a number of cores (1 to 256), got true",
        ),
        (
            "ssh:\n  listen: \"0.0.0.0:2222\"\n  max_auth_trys: 7\n",
            "config key ssh.max_auth_trys: not a known key (did you mean `max_auth_tries`?)",
        ),
    ] {
        std::fs::write(&cfg, yaml).unwrap();
        let out = check_config(&cfg, t.path());
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{yaml}: {stderr}");
        assert!(
            stderr.starts_with(&format!("dungeongate: {message} ({}, line ", cfg.display())),
            "{yaml}: {stderr}"
        );
        assert!(
            !stderr.contains("String(") && !stderr.contains("Bool("),
            "{stderr}"
        );
    }
}
