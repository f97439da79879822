//! The configuration loader on arbitrary text and environment overrides: a bad file is an
//! error naming the key, never a panic, and whatever validates holds the invariants the
//! server relies on.
//!
//! Input: up to the first 0xFF byte is `NAME=VALUE` environment lines; the rest is the YAML.

#![no_main]

use dungeongate::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (env_part, yaml) = match data.iter().position(|&b| b == 0xFF) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&[][..], data),
    };
    let env: Vec<(String, String)> = String::from_utf8_lossy(env_part)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (format!("DUNGEONGATE_{k}"), v.to_owned()))
        .collect();
    let text = String::from_utf8_lossy(yaml);
    for env in [Vec::new(), env] {
        if let Ok(c) = Config::from_yaml(&text, "fuzz", env) {
            assert!(!c.ssh.listen.is_empty());
            assert!(!c.http.listen.is_empty());
            assert!(c.cores >= 1);
            assert!(!c.ssh.kex.is_empty() && !c.ssh.ciphers.is_empty());
            assert!(c.limits.max_connections >= 1);
            assert!(c.limits.max_startups.start <= c.limits.max_startups.full);
            assert!(c.password.max_queued >= c.password.max_concurrent);
            let mut keys: Vec<char> = c.games.iter().map(|g| g.key).collect();
            keys.sort_unstable();
            keys.dedup();
            assert_eq!(keys.len(), c.games.len(), "two games share a menu key");
        }
    }
});
