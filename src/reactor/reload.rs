//! Configuration reload (SIGHUP): what a new configuration can change while the server runs,
//! and how every core takes it.
//!
//! The file is read and validated exactly as at start; a file that does not validate changes
//! nothing. Of a valid one, what can change live does — the games and their menu, the banner
//! and server id, the limits, the games' resource limits, recordings, the log level — and what
//! is fixed for the process's life keeps its running value, each named in the log as needing
//! a restart: the listeners, the cores, the data directory, who games run as, the SSH
//! algorithms and timings (each connection's SSH core is built from them), argon2's cost and
//! its pool, the metrics endpoint, the log format.
//!
//! The new configuration is published in [`Shared`](super::shared::Shared) behind an atomic
//! pointer and a counter; each core compares the counter once per loop turn and, when it
//! moved, takes the new configuration for what it starts from then on (new connections, new
//! games, the lobbies it draws). Nothing already running is interrupted: a game removed from
//! the list plays on until it ends.

use crate::config::Config;

/// What a reload does with a new, valid configuration.
#[derive(Debug)]
pub struct Plan {
    /// The configuration to publish: the new one, with the fixed parts as they run.
    pub config: Config,
    /// Keys whose new value waits for a restart.
    pub needs_restart: Vec<String>,
    /// Keys that change now.
    pub changed: Vec<&'static str>,
}

/// Compare the running configuration with `new` (valid, as loaded at start).
pub fn plan(running: &Config, mut new: Config) -> Plan {
    let mut needs_restart = Vec::new();
    let mut changed = Vec::new();
    // Compared by their `Debug` text: these are plain settings (no secrets, no floats), and
    // a field added to a section is then compared without anyone remembering to.
    macro_rules! fixed {
        ($($field:ident).+, $name:expr) => {
            if format!("{:?}", running.$($field).+) != format!("{:?}", new.$($field).+) {
                needs_restart.push($name.to_string());
                new.$($field).+ = running.$($field).+.clone();
            }
        };
    }
    macro_rules! live {
        ($($field:ident).+, $name:expr) => {
            if format!("{:?}", running.$($field).+) != format!("{:?}", new.$($field).+) {
                changed.push($name);
            }
        };
    }
    fixed!(ssh, "ssh");
    fixed!(http, "http");
    fixed!(metrics, "metrics");
    fixed!(data_dir, "data_dir");
    fixed!(cores, "cores");
    fixed!(run_as, "run_as");
    fixed!(games_as_server_user, "games_as_server_user");
    fixed!(password, "password");
    fixed!(log.format, "log.format");
    // The descriptor limit was raised at start for the connections allowed then: more needs
    // a restart (fewer is fine).
    if new.limits.max_connections > running.limits.max_connections {
        needs_restart.push(format!(
            "limits.max_connections above {} (the descriptor budget set at start)",
            running.limits.max_connections
        ));
        new.limits.max_connections = running.limits.max_connections;
    }
    live!(server_id, "server_id");
    live!(banner, "banner");
    live!(games, "games");
    live!(limits, "limits");
    live!(game_limits, "game_limits");
    live!(recording, "recording");
    live!(log.level, "log.level");
    Plan {
        config: new,
        needs_restart,
        changed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_YAML;

    fn config(yaml: &str) -> Config {
        Config::from_yaml(yaml, "test", Vec::new()).expect("valid")
    }

    fn base() -> Config {
        config(DEFAULT_YAML)
    }

    #[test]
    fn the_same_file_changes_nothing() {
        let p = plan(&base(), base());
        assert!(p.needs_restart.is_empty(), "{:?}", p.needs_restart);
        assert!(p.changed.is_empty(), "{:?}", p.changed);
    }

    #[test]
    fn games_banner_limits_and_log_level_change_live() {
        let mut new = base();
        new.banner = "## new banner".into();
        new.games.truncate(1);
        new.limits.max_connections -= 1;
        new.log.level = "debug".into();
        let p = plan(&base(), new);
        assert_eq!(p.changed, ["banner", "games", "limits", "log.level"]);
        assert!(p.needs_restart.is_empty());
        assert_eq!(p.config.banner, "## new banner");
        assert_eq!(p.config.games.len(), 1);
        assert_eq!(p.config.log.level, "debug");
    }

    #[test]
    fn listeners_cores_and_the_data_dir_keep_their_running_values_and_say_so() {
        let running = base();
        let mut new = base();
        new.ssh.listen = vec!["127.0.0.1:4022".parse().expect("addr")];
        new.cores = running.cores + 1;
        new.data_dir = "/elsewhere".into();
        new.banner = "changed too".into();
        let p = plan(&running, new);
        assert_eq!(p.needs_restart, ["ssh", "data_dir", "cores"]);
        assert_eq!(p.config.ssh.listen, running.ssh.listen);
        assert_eq!(p.config.cores, running.cores);
        assert_eq!(p.config.data_dir, running.data_dir);
        // What can change still does.
        assert_eq!(p.changed, ["banner"]);
        assert_eq!(p.config.banner, "changed too");
    }

    #[test]
    fn more_connections_than_the_start_allowed_wait_for_a_restart() {
        let running = base();
        let mut new = base();
        new.limits.max_connections = running.limits.max_connections + 100;
        let p = plan(&running, new);
        assert_eq!(p.needs_restart.len(), 1);
        assert!(p.needs_restart[0].starts_with("limits.max_connections"));
        assert_eq!(
            p.config.limits.max_connections,
            running.limits.max_connections
        );
    }
}
