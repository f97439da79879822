//! The configuration: YAML (compiled-in default, `./config.yaml`, or `--config FILE`) with
//! environment overrides, validated into typed settings.
//!
//! A file sets only the keys it changes: every section and key has a default, the value in
//! the compiled-in `config.yaml` (an empty file is the default configuration).
//!
//! Every error names the key, the value as written and what was expected, and where the file
//! says it, so an operator can fix the file without reading code: `config key ssh.listen:
//! "abc" is not a socket address (expected host:port, e.g. 0.0.0.0:2222) (config.yaml, line 3,
//! column 11)`.

use serde::Deserialize;
use serde_yaml_ng::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use thiserror::Error;

pub mod check;
mod de;
mod locate;
mod recording;
pub use recording::RecordingConfig;

use crate::ssh::cipher::CipherAlg;
use crate::ssh::kex::KexAlg;

/// The default configuration, compiled in.
pub const DEFAULT_YAML: &str = include_str!("../config.yaml");

/// Prefix of environment overrides.
const ENV_PREFIX: &str = "DUNGEONGATE_";

/// A configuration problem, phrased for the operator.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {origin}: not valid YAML: {message}")]
    Yaml { origin: String, message: String },
    #[error("config key {key}: {message}{}", Place::suffix(.at))]
    Key {
        key: String,
        message: String,
        /// Where the value came from, when known.
        at: Option<Place>,
    },
}

/// Where a bad value was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// In the file `origin`, at this line and column (from 1).
    File {
        origin: String,
        line: usize,
        column: usize,
    },
    /// Set by this environment variable.
    Env(String),
}

impl Place {
    /// ` (config.yaml, line 3, column 11)`, or nothing.
    fn suffix(at: &Option<Place>) -> String {
        match at {
            Some(Place::File {
                origin,
                line,
                column,
            }) => format!(" ({origin}, line {line}, column {column})"),
            Some(Place::Env(name)) => format!(" (set by {name})"),
            None => String::new(),
        }
    }
}

fn key_error(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Key {
        key: key.into(),
        message: message.into(),
        at: None,
    }
}

/// How an error about the whole file names it.
const TOP_LEVEL: &str = "(top level)";

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Shown in banners as $SERVERID.
    pub server_id: String,
    pub ssh: SshConfig,
    pub http: HttpConfig,
    pub metrics: MetricsConfig,
    /// Where the host key, accounts and per-user files live.
    pub data_dir: PathBuf,
    /// Number of data cores.
    pub cores: usize,
    /// Unprivileged user that games run as when the server runs as root.
    pub run_as: String,
    /// Started as a user other than root, external games would run as that same user, able
    /// to read the host key and the account store: allowed only when this is set.
    pub games_as_server_user: bool,
    pub password: PasswordConfig,
    pub limits: LimitsConfig,
    pub game_limits: GameLimits,
    /// Lobby banner text with $-substitutions.
    pub banner: String,
    pub games: Vec<GameConfig>,
    pub log: LogConfig,
    /// Every game's ttyrec.
    pub recording: RecordingConfig,
}

#[derive(Debug, Clone)]
pub struct SshConfig {
    /// Every address SSH listens on (one or more; IPv4 and IPv6).
    pub listen: Vec<SocketAddr>,
    pub kex: Vec<KexAlg>,
    pub ciphers: Vec<CipherAlg>,
    pub login_grace_seconds: u64,
    pub max_auth_tries: u32,
    pub rekey_bytes: u64,
    pub rekey_seconds: u64,
    /// Empty: no SSH banner.
    pub auth_banner: String,
    /// Connections from these sources start with a PROXY protocol v2 header naming the real
    /// client (HAProxy `send-proxy-v2`, a cloud load balancer); empty: off.
    pub proxy_protocol_from: crate::limits::CidrList,
}

#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Every address the operators' HTTP endpoint listens on.
    pub listen: Vec<SocketAddr>,
}

#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// Serve the Prometheus scrape (health endpoints are always served).
    pub enabled: bool,
    /// Path of the scrape, e.g. `/metrics`.
    pub path: String,
}

#[derive(Debug, Clone, Copy)]
pub struct PasswordConfig {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Hashes allowed to run at once (bounds memory: each takes `memory_kib`).
    pub max_concurrent: usize,
    /// Hashes allowed to run or wait; past it logins get "busy, try again".
    pub max_queued: usize,
}

#[derive(Debug, Clone)]
pub struct LimitsConfig {
    pub max_connections: usize,
    /// Random early drop of new connections by the number not yet logged in (all cores).
    pub max_startups: crate::limits::MaxStartups,
    /// Connections one source (IPv4 address, IPv6 /64) may have open.
    pub per_source_max_connections: u32,
    /// Of those, not yet logged in.
    pub per_source_max_unauthenticated: u32,
    /// First penalty of a source for a failed login, a login grace run out or a protocol
    /// error (0: no penalties); doubles with each further one.
    pub penalty_seconds: u64,
    /// Longest penalty.
    pub penalty_max_seconds: u64,
    /// Only these sources may connect (empty: everyone not denied).
    pub allow: crate::limits::CidrList,
    /// These sources may never connect.
    pub deny: crate::limits::CidrList,
    /// Sources exempt from per-source limits, penalties and MaxStartups (monitoring, a
    /// trusted gateway); `deny` still applies.
    pub exempt: crate::limits::CidrList,
    /// What counts as one source: IPv4 and IPv6 prefix lengths.
    pub source_grouping: crate::limits::SourceGrouping,
    /// Output one connection may have queued (sealed, held during a key exchange) before the
    /// server stops answering its input.
    pub max_queued_output_bytes: usize,
    /// Seconds output may stay over that cap (the peer not reading) before the connection is
    /// closed; also how long a closing connection may take to flush its last bytes.
    pub output_stall_seconds: u64,
    /// Password failures an account may have before attempts on it are held back.
    pub account_failures_before_backoff: u32,
    /// Longest hold-back of an account (the hold doubles from 1 s per failure).
    pub account_backoff_max_seconds: u64,
    /// Password failures an address (IPv4 /32, IPv6 /64) may have before it is held back.
    pub source_failures_before_backoff: u32,
    /// Longest hold-back of an address.
    pub source_backoff_max_seconds: u64,
    /// Lock the account (as `user lock` does) after this many failures in a row; 0: never.
    pub lock_account_after_failures: u32,
    /// New accounts one address may register per hour from the lobby.
    pub registrations_per_source_per_hour: u32,
    /// Control messages (anything but channel data and window adjustments) one connection
    /// may send per second in the long run, and in one burst.
    pub control_messages_per_second: u32,
    pub control_messages_burst: u32,
    /// Failed logins, and failed registrations, one lobby connection may make.
    pub lobby_failed_logins: u8,
    pub lobby_failed_registrations: u8,
    /// Games kept running for their dropped players at once (the server's total, shared out
    /// over the cores); past it a dropped player's game is hung up at once. A detached game
    /// holds a process and a PTY without a connection, so the per-source limits do not see it.
    pub max_detached_games: usize,
    /// A lobby nobody types in is closed after this long.
    pub lobby_idle_seconds: u64,
    /// A logged-in connection with no session channel is closed after this long.
    pub no_channel_idle_seconds: u64,
}

impl LimitsConfig {
    /// The password throttle's rules.
    pub fn throttle_rules(&self) -> crate::limits::throttle::ThrottleRules {
        use crate::limits::throttle::{Backoff, ThrottleRules};
        const FORGET_MS: u64 = 15 * 60 * 1000;
        ThrottleRules {
            account: Backoff {
                free_failures: self.account_failures_before_backoff,
                base_ms: 1000,
                max_ms: self.account_backoff_max_seconds.saturating_mul(1000),
                forget_ms: FORGET_MS,
            },
            source: Backoff {
                free_failures: self.source_failures_before_backoff,
                base_ms: 1000,
                max_ms: self.source_backoff_max_seconds.saturating_mul(1000),
                forget_ms: FORGET_MS,
            },
            registrations_per_hour: self.registrations_per_source_per_hour,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct GameLimits {
    pub core_bytes: Option<u64>,
    pub cpu_seconds: Option<u64>,
    pub processes: Option<u64>,
    pub address_space_bytes: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct GameConfig {
    /// Short id, used in `ssh host ID` and in metrics labels.
    pub id: String,
    pub name: String,
    /// Menu key.
    pub key: char,
    pub command: GameCommand,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub workdir: Option<String>,
    /// Per-user directory template, created before the game starts.
    pub user_dir: Option<String>,
    /// Per-user rc file template, created from `rc_template` when missing.
    pub rc_file: Option<String>,
    pub rc_template: Option<String>,
    /// Let one account run several copies at once. Off by default: two copies of a game
    /// with a save file under one name overwrite each other's save. Only for games that
    /// keep no per-player state.
    pub concurrent_per_account: bool,
    /// How long the game keeps running, detached, after its player's connection drops
    /// (0: hung up at once). Logging in again within it re-attaches. Not for games with
    /// `concurrent_per_account` (a start never finds a running copy of those).
    pub detach_grace_seconds: u64,
    /// Where the game keeps a player's save (a pattern: `%u`, `%uid`, `%d`, `%D`); the server
    /// copies it to its own backups before each start (`crate::game::saves`). `None`: no
    /// backups.
    pub save_file: Option<String>,
    /// Backups kept per player and game; older ones are removed.
    pub save_backups_kept: u32,
}

/// Default of `games[].save_backups_kept`.
pub const DEFAULT_SAVE_BACKUPS_KEPT: u32 = 10;
/// Most backups of one player's save kept per game: each is a copy of the save on disk.
pub const MAX_SAVE_BACKUPS_KEPT: u32 = 1000;

/// Default of `games[].detach_grace_seconds`: five minutes to come back after a dropped
/// connection.
pub const DEFAULT_DETACH_GRACE_SECONDS: u64 = 300;
/// Longest grace a game may be given: a detached game holds a process, a PTY and a slot.
pub const MAX_DETACH_GRACE_SECONDS: u64 = 7 * 24 * 3600;

/// What a game runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GameCommand {
    /// An external program.
    Program(PathBuf),
    /// A game built into this binary (`builtin:NAME`).
    Builtin(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

/// Built-in games this binary carries.
pub const BUILTIN_GAMES: &[&str] = &["amulet"];

impl Config {
    /// The configured game `id`.
    pub fn game(&self, id: &str) -> Option<&GameConfig> {
        self.games.iter().find(|g| g.id == id)
    }
}

/// Keys the lobby keeps for itself.
const RESERVED_KEYS: &[char] = &['c', 'e', 'q', 'a', 'w', 'o', 'k', 'l', 'r'];

impl Config {
    /// Load from `path`, else `./config.yaml` if present, else the compiled-in default;
    /// then apply environment overrides and validate.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let (text, origin) = match path {
            Some(p) => (read(p)?, p.display().to_string()),
            None if Path::new("config.yaml").is_file() => {
                (read(Path::new("config.yaml"))?, "config.yaml".to_owned())
            }
            None => (DEFAULT_YAML.to_owned(), "(built-in default)".to_owned()),
        };
        Self::from_yaml(&text, &origin, std::env::vars())
    }

    /// Parse `text`, apply `env` overrides, validate.
    pub fn from_yaml(
        text: &str,
        origin: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut value: Value = serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Yaml {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        let overridden = apply_env_overrides(&mut value, env)?;
        let place = |e| place(e, text, origin, &overridden);
        let raw: RawConfig = de::from_value(value).map_err(|(path, message)| {
            let key = if path == "." {
                TOP_LEVEL.to_owned()
            } else {
                path
            };
            place(key_error(key, message))
        })?;
        raw.validate().map_err(place)
    }
}

/// Say where the bad value of `e` came from: the environment variable that set its key, or
/// its line in `text`.
fn place(e: ConfigError, text: &str, origin: &str, overridden: &[(String, String)]) -> ConfigError {
    let ConfigError::Key {
        key,
        message,
        at: None,
    } = e
    else {
        return e;
    };
    let under = |set: &str| {
        key.strip_prefix(set)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
    };
    let at = match overridden.iter().rev().find(|(set, _)| under(set)) {
        Some((_, name)) => Some(Place::Env(name.clone())),
        None => {
            let path = if key == TOP_LEVEL { "." } else { key.as_str() };
            locate::locate(text, path).map(|(line, column)| Place::File {
                origin: origin.to_owned(),
                line,
                column,
            })
        }
    };
    ConfigError::Key { key, message, at }
}

fn read(p: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
        path: p.to_owned(),
        source,
    })
}

/// `DUNGEONGATE_SSH_LISTEN=…` sets `ssh.listen`; `DUNGEONGATE_DATA_DIR=…` sets `data_dir`;
/// `DUNGEONGATE_GAME_LIMITS_CPU_SECONDS=…` sets `game_limits.cpu_seconds`. Which names are
/// sections and which are top-level keys comes from the built-in config, not the file: a file
/// that leaves a section out can still have it set from the environment. A top-level key
/// wins over a section/key split; the longest section name wins over a shorter one.
///
/// Returns the key paths set, each with the variable that set it.
fn apply_env_overrides(
    root: &mut Value,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<(String, String)>, ConfigError> {
    let shape: Value = serde_yaml_ng::from_str(DEFAULT_YAML).unwrap_or(Value::Null);
    let mut top_keys = Vec::new();
    let mut sections = Vec::new();
    if let Value::Mapping(m) = &shape {
        for (k, v) in m {
            if let Some(k) = k.as_str() {
                if v.is_mapping() {
                    sections.push(k);
                } else {
                    top_keys.push(k);
                }
            }
        }
    }
    let mut set = Vec::new();
    for (name, raw_value) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let rest = rest.to_ascii_lowercase();
        let parsed: Value =
            serde_yaml_ng::from_str(&raw_value).unwrap_or(Value::String(raw_value.clone()));
        // An empty file is an empty mapping.
        if root.is_null() {
            *root = Value::Mapping(serde_yaml_ng::Mapping::new());
        }
        let Value::Mapping(map) = root else {
            return Err(key_error(
                TOP_LEVEL,
                "expected a mapping of keys (such as `ssh:`), so that environment \
                 overrides have somewhere to go",
            ));
        };
        if top_keys.contains(&rest.as_str()) {
            map.insert(Value::String(rest.clone()), parsed);
            set.push((rest, name));
            continue;
        }
        let split = sections
            .iter()
            .filter_map(|s| Some((*s, rest.strip_prefix(s)?.strip_prefix('_')?)))
            .filter(|(_, key)| !key.is_empty())
            .max_by_key(|(s, _)| s.len());
        let Some((section, key)) = split else {
            return Err(key_error(
                name,
                "names no known config key (expected DUNGEONGATE_<SECTION>_<KEY> or \
                 DUNGEONGATE_<KEY>, e.g. DUNGEONGATE_SSH_LISTEN or DUNGEONGATE_DATA_DIR)",
            ));
        };
        let sub = map
            .entry(Value::String(section.to_owned()))
            .or_insert(Value::Null);
        if sub.is_null() {
            *sub = Value::Mapping(serde_yaml_ng::Mapping::new());
        }
        // A section the file made something other than a mapping is reported as the file's
        // own mistake when the config is read.
        if let Value::Mapping(sub) = sub {
            sub.insert(Value::String(key.to_owned()), parsed);
        }
        set.push((format!("{section}.{key}"), name));
    }
    Ok(set)
}

// ----- the raw YAML shape -----
//
// Every section is `#[serde(default)]` with a `Default` that holds the value `config.yaml`
// documents (a test holds the two together), so a file sets only the keys it changes.
// `deny_unknown_fields` stays on every one: a misspelt key is an error, not a silent default.

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    server_id: String,
    ssh: RawSsh,
    http: RawHttp,
    metrics: RawMetrics,
    data_dir: String,
    /// `auto` or a number; kept raw so a bad value can be reported as written.
    cores: Option<Value>,
    run_as: String,
    games_as_server_user: bool,
    password: RawPassword,
    limits: RawLimits,
    game_limits: RawGameLimits,
    banner: String,
    games: Vec<RawGame>,
    log: RawLog,
    recording: recording::RawRecording,
}

/// The built-in banner (as in `config.yaml`).
const DEFAULT_BANNER: &str = "## $SERVERID - terminal games over ssh\n\
                              ## $DATE  players: $PLAYERS  watchers: $WATCHERS\n";

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            server_id: "dungeongate".into(),
            ssh: RawSsh::default(),
            http: RawHttp::default(),
            metrics: RawMetrics::default(),
            data_dir: "data".into(),
            cores: None,
            run_as: "games".into(),
            games_as_server_user: false,
            password: RawPassword::default(),
            limits: RawLimits::default(),
            game_limits: RawGameLimits::default(),
            banner: DEFAULT_BANNER.into(),
            games: default_games(),
            log: RawLog::default(),
            recording: recording::RawRecording::default(),
        }
    }
}

/// The games of the built-in config: a file that leaves `games` out offers the same ones
/// (NetHack, shown as unavailable until installed, and the built-in Amulet Run). Read from
/// `config.yaml` itself rather than repeated here; a test checks that it reads.
fn default_games() -> Vec<RawGame> {
    serde_yaml_ng::from_str::<Value>(DEFAULT_YAML)
        .ok()
        .and_then(|v| v.get("games").cloned())
        .and_then(|games| de::from_value(games).ok())
        .unwrap_or_default()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSsh {
    listen: RawListen,
    /// `None`: every supported method, in the built-in order.
    kex: Option<Vec<String>>,
    /// `None`: every supported cipher, in the built-in order.
    ciphers: Option<Vec<String>>,
    login_grace_seconds: u64,
    max_auth_tries: u32,
    rekey_bytes: u64,
    rekey_seconds: u64,
    auth_banner: String,
    proxy_protocol_from: Vec<String>,
}

impl Default for RawSsh {
    fn default() -> Self {
        RawSsh {
            listen: RawListen::One("0.0.0.0:2222".into()),
            kex: None,
            ciphers: None,
            login_grace_seconds: 120,
            max_auth_tries: 6,
            rekey_bytes: 1 << 30,
            rekey_seconds: 3600,
            auth_banner: String::new(),
            proxy_protocol_from: Vec::new(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawHttp {
    listen: RawListen,
}

impl Default for RawHttp {
    fn default() -> Self {
        RawHttp {
            listen: RawListen::One("127.0.0.1:8085".into()),
        }
    }
}

/// `listen:` takes one address, a list, or one string of comma-separated addresses (handy in
/// an environment override).
enum RawListen {
    One(String),
    Many(Vec<String>),
}

// By hand rather than `#[serde(untagged)]`: a value that is neither gets "expected an address
// ..." instead of serde's "data did not match any variant of untagged enum RawListen".
impl<'de> Deserialize<'de> for RawListen {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ListenVisitor;
        impl<'de> serde::de::Visitor<'de> for ListenVisitor {
            type Value = RawListen;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an address such as \"0.0.0.0:2222\", or a list of them")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawListen, E> {
                Ok(RawListen::One(v.to_owned()))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<RawListen, A::Error> {
                let mut all = Vec::new();
                while let Some(addr) = seq.next_element::<String>()? {
                    all.push(addr);
                }
                Ok(RawListen::Many(all))
            }
        }
        d.deserialize_any(ListenVisitor)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawMetrics {
    enabled: bool,
    path: String,
}

impl Default for RawMetrics {
    fn default() -> Self {
        RawMetrics {
            enabled: true,
            path: "/metrics".into(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawPassword {
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
    max_concurrent: usize,
    max_queued: usize,
}

impl Default for RawPassword {
    fn default() -> Self {
        RawPassword {
            memory_kib: 19456,
            iterations: 2,
            parallelism: 1,
            max_concurrent: 4,
            max_queued: 64,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(default)]
struct RawLimits {
    max_connections: usize,
    max_startups: String,
    per_source_max_connections: u32,
    per_source_max_unauthenticated: u32,
    penalty_seconds: u64,
    penalty_max_seconds: u64,
    allow: Vec<String>,
    deny: Vec<String>,
    exempt: Vec<String>,
    source_prefix_v4: u8,
    source_prefix_v6: u8,
    max_queued_output_bytes: usize,
    output_stall_seconds: u64,
    account_failures_before_backoff: u32,
    account_backoff_max_seconds: u64,
    source_failures_before_backoff: u32,
    source_backoff_max_seconds: u64,
    lock_account_after_failures: u32,
    registrations_per_source_per_hour: u32,
    lobby_idle_seconds: u64,
    no_channel_idle_seconds: u64,
    control_messages_per_second: u32,
    control_messages_burst: u32,
    lobby_failed_logins: u8,
    lobby_failed_registrations: u8,
    max_detached_games: usize,
}
impl Default for RawLimits {
    fn default() -> Self {
        RawLimits {
            max_connections: 10_000,
            max_startups: "10:30:100".into(),
            per_source_max_connections: 20,
            per_source_max_unauthenticated: 5,
            penalty_seconds: 5,
            penalty_max_seconds: 600,
            allow: Vec::new(),
            deny: Vec::new(),
            exempt: Vec::new(),
            source_prefix_v4: 32,
            source_prefix_v6: 64,
            max_queued_output_bytes: 1 << 20,
            output_stall_seconds: 60,
            account_failures_before_backoff: 5,
            account_backoff_max_seconds: 300,
            source_failures_before_backoff: 10,
            source_backoff_max_seconds: 900,
            lock_account_after_failures: 0,
            registrations_per_source_per_hour: 5,
            lobby_idle_seconds: 1800,
            no_channel_idle_seconds: 120,
            control_messages_per_second: 20,
            control_messages_burst: 200,
            lobby_failed_logins: 3,
            lobby_failed_registrations: 3,
            max_detached_games: 1000,
        }
    }
}

/// Smallest output cap that still holds any single answer (a full-size packet and more).
const MIN_QUEUED_OUTPUT: usize = 64 * 1024;

/// Each limit: a number, or `null` for none (the game inherits the server's).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawGameLimits {
    core_bytes: Option<u64>,
    cpu_seconds: Option<u64>,
    processes: Option<u64>,
    address_space_bytes: Option<u64>,
}

impl Default for RawGameLimits {
    fn default() -> Self {
        RawGameLimits {
            core_bytes: Some(0),
            cpu_seconds: Some(86_400),
            processes: Some(40_000),
            address_space_bytes: Some(4 << 30),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGame {
    id: String,
    name: String,
    command: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    workdir: Option<String>,
    #[serde(default)]
    user_dir: Option<String>,
    #[serde(default)]
    rc_file: Option<String>,
    #[serde(default)]
    rc_template: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    concurrent_per_account: bool,
    #[serde(default = "default_detach_grace")]
    detach_grace_seconds: u64,
    #[serde(default)]
    save_file: Option<String>,
    #[serde(default = "default_save_backups_kept")]
    save_backups_kept: u32,
}
fn default_detach_grace() -> u64 {
    DEFAULT_DETACH_GRACE_SECONDS
}
fn default_save_backups_kept() -> u32 {
    DEFAULT_SAVE_BACKUPS_KEPT
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLog {
    format: String,
    level: String,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            format: "text".into(),
            level: "info".into(),
        }
    }
}

// ----- validation -----

fn socket_addr(key: &str, v: &str) -> Result<SocketAddr, ConfigError> {
    v.trim().parse().map_err(|_| {
        key_error(
            key,
            format!(
                "{v:?} is not a socket address (expected host:port, e.g. 0.0.0.0:2222 or \
                 [::]:2222)"
            ),
        )
    })
}

/// One or more listen addresses: none missing, none twice.
fn listen_addrs(key: &str, raw: &RawListen) -> Result<Vec<SocketAddr>, ConfigError> {
    let texts: Vec<&str> = match raw {
        RawListen::One(s) => s.split(',').collect(),
        RawListen::Many(v) => v.iter().map(String::as_str).collect(),
    };
    let mut addrs: Vec<SocketAddr> = Vec::with_capacity(texts.len());
    for t in texts {
        let a = socket_addr(key, t)?;
        if addrs.contains(&a) {
            return Err(key_error(key, format!("{a} is listed twice")));
        }
        addrs.push(a);
    }
    if addrs.is_empty() {
        return Err(key_error(key, "no address given (expected host:port)"));
    }
    Ok(addrs)
}

fn cidr_list(key: &str, items: &[String]) -> Result<crate::limits::CidrList, ConfigError> {
    let blocks = items
        .iter()
        .enumerate()
        .map(|(i, t)| {
            t.parse().map_err(|e: crate::limits::cidr::CidrError| {
                key_error(format!("{key}[{i}]"), e.to_string())
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(crate::limits::CidrList::new(blocks))
}

fn prefix_len(key: &str, v: u8, max: u8) -> Result<u8, ConfigError> {
    if v == 0 || v > max {
        return Err(key_error(
            key,
            format!("{v} is not a prefix length (expected 1 to {max})"),
        ));
    }
    Ok(v)
}

fn at_least(key: &str, v: usize, min: usize) -> Result<usize, ConfigError> {
    if v < min {
        return Err(key_error(
            key,
            format!("{v} is too small (expected at least {min})"),
        ));
    }
    Ok(v)
}

fn positive(key: &str, v: u64) -> Result<u64, ConfigError> {
    if v == 0 {
        return Err(key_error(
            key,
            "0 is not allowed (expected a positive number)",
        ));
    }
    Ok(v)
}

impl RawConfig {
    fn validate(self) -> Result<Config, ConfigError> {
        let kex = match self.ssh.kex {
            None => KexAlg::ALL.to_vec(),
            Some(names) => names_to_algs(
                "ssh.kex",
                &names,
                KexAlg::from_name,
                &KexAlg::ALL.map(KexAlg::name),
            )?,
        };
        let ciphers = match self.ssh.ciphers {
            None => CipherAlg::ALL.to_vec(),
            Some(names) => names_to_algs(
                "ssh.ciphers",
                &names,
                CipherAlg::from_name,
                &CipherAlg::ALL.map(CipherAlg::name),
            )?,
        };
        let cores = match self.cores {
            None => available_cores(),
            Some(Value::String(s)) if s == "auto" => available_cores(),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(c) if (1..=256).contains(&c) => c as usize,
                _ => {
                    return Err(key_error(
                        "cores",
                        format!("{n} is out of range (expected auto or 1 to 256)"),
                    ))
                }
            },
            Some(other) => {
                return Err(key_error(
                    "cores",
                    format!(
                        "expected auto or a number of cores (1 to 256), got {}",
                        de::describe(&other)
                    ),
                ))
            }
        };
        if self.data_dir.trim().is_empty() {
            return Err(key_error("data_dir", "must not be empty"));
        }
        if self.run_as.trim().is_empty() || self.run_as == "root" {
            return Err(key_error(
                "run_as",
                format!(
                    "{:?} is not allowed (expected an unprivileged user, e.g. games)",
                    self.run_as
                ),
            ));
        }
        let p = &self.password;
        if p.memory_kib < 8 * p.parallelism.max(1) || p.iterations == 0 || p.parallelism == 0 {
            return Err(key_error(
                "password",
                "argon2 needs iterations >= 1, parallelism >= 1 and memory_kib >= 8 x parallelism",
            ));
        }
        if p.max_concurrent == 0 {
            return Err(key_error(
                "password.max_concurrent",
                "0 is not allowed (expected at least 1)",
            ));
        }
        let format = match self.log.format.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(key_error(
                    "log.format",
                    format!("{other:?} is not a log format (expected text or json)"),
                ))
            }
        };
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(key_error(
                "log.level",
                format!(
                    "{:?} is not a log level (expected error, warn, info, debug or trace)",
                    self.log.level
                ),
            ));
        }
        let games = validate_games(self.games)?;
        let mpath = &self.metrics.path;
        if !mpath.starts_with('/')
            || mpath.starts_with("/health")
            || mpath.len() > 128
            || !mpath.chars().all(|c| c.is_ascii_graphic())
        {
            return Err(key_error(
                "metrics.path",
                format!(
                    "{mpath:?} is not usable (expected a path like /metrics, not under /health)"
                ),
            ));
        }
        Ok(Config {
            server_id: self.server_id,
            ssh: SshConfig {
                listen: listen_addrs("ssh.listen", &self.ssh.listen)?,
                kex,
                ciphers,
                login_grace_seconds: positive(
                    "ssh.login_grace_seconds",
                    self.ssh.login_grace_seconds,
                )?,
                max_auth_tries: positive("ssh.max_auth_tries", u64::from(self.ssh.max_auth_tries))?
                    as u32,
                rekey_bytes: positive("ssh.rekey_bytes", self.ssh.rekey_bytes)?,
                rekey_seconds: positive("ssh.rekey_seconds", self.ssh.rekey_seconds)?,
                auth_banner: self.ssh.auth_banner,
                proxy_protocol_from: cidr_list(
                    "ssh.proxy_protocol_from",
                    &self.ssh.proxy_protocol_from,
                )?,
            },
            http: HttpConfig {
                listen: listen_addrs("http.listen", &self.http.listen)?,
            },
            metrics: MetricsConfig {
                enabled: self.metrics.enabled,
                path: self.metrics.path,
            },
            recording: self.recording.validate(Path::new(&self.data_dir))?,
            data_dir: PathBuf::from(self.data_dir),
            cores,
            run_as: self.run_as,
            games_as_server_user: self.games_as_server_user,
            password: PasswordConfig {
                memory_kib: p.memory_kib,
                iterations: p.iterations,
                parallelism: p.parallelism,
                max_concurrent: p.max_concurrent,
                max_queued: at_least("password.max_queued", p.max_queued, p.max_concurrent)?,
            },
            limits: LimitsConfig {
                max_connections: positive(
                    "limits.max_connections",
                    self.limits.max_connections as u64,
                )? as usize,
                max_startups: self
                    .limits
                    .max_startups
                    .parse()
                    .map_err(|e: String| key_error("limits.max_startups", e))?,
                per_source_max_connections: positive(
                    "limits.per_source_max_connections",
                    u64::from(self.limits.per_source_max_connections),
                )? as u32,
                per_source_max_unauthenticated: positive(
                    "limits.per_source_max_unauthenticated",
                    u64::from(self.limits.per_source_max_unauthenticated),
                )? as u32,
                penalty_seconds: self.limits.penalty_seconds,
                penalty_max_seconds: self.limits.penalty_max_seconds,
                allow: cidr_list("limits.allow", &self.limits.allow)?,
                deny: cidr_list("limits.deny", &self.limits.deny)?,
                exempt: cidr_list("limits.exempt", &self.limits.exempt)?,
                source_grouping: crate::limits::SourceGrouping {
                    v4: prefix_len("limits.source_prefix_v4", self.limits.source_prefix_v4, 32)?,
                    v6: prefix_len("limits.source_prefix_v6", self.limits.source_prefix_v6, 128)?,
                },
                max_queued_output_bytes: at_least(
                    "limits.max_queued_output_bytes",
                    self.limits.max_queued_output_bytes,
                    MIN_QUEUED_OUTPUT,
                )?,
                output_stall_seconds: positive(
                    "limits.output_stall_seconds",
                    self.limits.output_stall_seconds,
                )?,
                account_failures_before_backoff: self.limits.account_failures_before_backoff,
                account_backoff_max_seconds: positive(
                    "limits.account_backoff_max_seconds",
                    self.limits.account_backoff_max_seconds,
                )?,
                source_failures_before_backoff: self.limits.source_failures_before_backoff,
                source_backoff_max_seconds: positive(
                    "limits.source_backoff_max_seconds",
                    self.limits.source_backoff_max_seconds,
                )?,
                lock_account_after_failures: self.limits.lock_account_after_failures,
                registrations_per_source_per_hour: self.limits.registrations_per_source_per_hour,
                control_messages_per_second: positive(
                    "limits.control_messages_per_second",
                    u64::from(self.limits.control_messages_per_second),
                )? as u32,
                control_messages_burst: positive(
                    "limits.control_messages_burst",
                    u64::from(self.limits.control_messages_burst),
                )? as u32,
                lobby_failed_logins: positive(
                    "limits.lobby_failed_logins",
                    u64::from(self.limits.lobby_failed_logins),
                )? as u8,
                lobby_failed_registrations: positive(
                    "limits.lobby_failed_registrations",
                    u64::from(self.limits.lobby_failed_registrations),
                )? as u8,
                max_detached_games: self.limits.max_detached_games,
                lobby_idle_seconds: positive(
                    "limits.lobby_idle_seconds",
                    self.limits.lobby_idle_seconds,
                )?,
                no_channel_idle_seconds: positive(
                    "limits.no_channel_idle_seconds",
                    self.limits.no_channel_idle_seconds,
                )?,
            },
            game_limits: GameLimits {
                core_bytes: self.game_limits.core_bytes,
                cpu_seconds: self.game_limits.cpu_seconds,
                processes: self.game_limits.processes,
                address_space_bytes: self.game_limits.address_space_bytes,
            },
            banner: self.banner,
            games,
            log: LogConfig {
                format,
                level: self.log.level,
            },
        })
    }
}

fn names_to_algs<T: PartialEq>(
    key: &str,
    names: &[String],
    parse: impl Fn(&str) -> Option<T>,
    known: &[&str],
) -> Result<Vec<T>, ConfigError> {
    if names.is_empty() {
        return Err(key_error(key, "must list at least one algorithm"));
    }
    let mut out = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let alg = parse(n).ok_or_else(|| {
            key_error(
                format!("{key}[{i}]"),
                format!(
                    "{n:?} is not supported (expected one of: {})",
                    known.join(", ")
                ),
            )
        })?;
        if !out.contains(&alg) {
            out.push(alg);
        }
    }
    Ok(out)
}

fn validate_games(raw: Vec<RawGame>) -> Result<Vec<GameConfig>, ConfigError> {
    if raw.is_empty() {
        return Err(key_error(
            "games",
            "must list at least one game (leave `games` out for the built-in ones)",
        ));
    }
    let mut games: Vec<GameConfig> = Vec::new();
    let mut next_digit = 2u32;
    for (i, g) in raw.into_iter().enumerate() {
        let at = |field: &str| format!("games[{i}].{field}");
        let id_ok = !g.id.is_empty()
            && g.id.len() <= 32
            && g.id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !id_ok {
            return Err(key_error(
                at("id"),
                format!(
                    "{:?} is not a valid id (expected 1-32 of a-z, 0-9, - and _)",
                    g.id
                ),
            ));
        }
        if games.iter().any(|o| o.id == g.id) {
            return Err(key_error(
                at("id"),
                format!("{:?} is used by an earlier game", g.id),
            ));
        }
        if g.name.trim().is_empty() || g.name.chars().any(char::is_control) {
            return Err(key_error(at("name"), "must be a non-empty line of text"));
        }
        let command = if let Some(b) = g.command.strip_prefix("builtin:") {
            if !BUILTIN_GAMES.contains(&b) {
                return Err(key_error(
                    at("command"),
                    format!(
                        "{:?} is not a built-in game (expected one of: {})",
                        g.command,
                        BUILTIN_GAMES
                            .iter()
                            .map(|b| format!("builtin:{b}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            GameCommand::Builtin(b.to_owned())
        } else if g.command.starts_with('/') {
            GameCommand::Program(PathBuf::from(&g.command))
        } else {
            return Err(key_error(
                at("command"),
                format!(
                    "{:?} is not an absolute path (expected /path/to/game or builtin:NAME)",
                    g.command
                ),
            ));
        };
        let key = match g.key.as_deref() {
            Some(k) => {
                let mut chars = k.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) if c.is_ascii_alphanumeric() => c,
                    _ => {
                        return Err(key_error(
                            at("key"),
                            format!("{k:?} is not a single letter or digit"),
                        ))
                    }
                }
            }
            None if i == 0 => 'p',
            None => {
                let c = char::from_digit(next_digit, 10).unwrap_or('9');
                next_digit += 1;
                c
            }
        };
        if g.detach_grace_seconds > MAX_DETACH_GRACE_SECONDS {
            return Err(key_error(
                at("detach_grace_seconds"),
                format!(
                    "{} is more than the most a game may wait for its player ({MAX_DETACH_GRACE_SECONDS} seconds, a week)",
                    g.detach_grace_seconds
                ),
            ));
        }
        if RESERVED_KEYS.contains(&key.to_ascii_lowercase()) {
            return Err(key_error(
                at("key"),
                format!(
                    "\"{key}\" is a lobby key (reserved: {})",
                    RESERVED_KEYS
                        .iter()
                        .map(char::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        if games.iter().any(|o| o.key == key) {
            return Err(key_error(
                at("key"),
                format!("\"{key}\" is used by an earlier game"),
            ));
        }
        if g.rc_template.is_some() && g.rc_file.is_none() {
            return Err(key_error(
                at("rc_template"),
                "needs rc_file (where to write it)",
            ));
        }
        if let Some(pattern) = &g.save_file {
            crate::game::saves::check_pattern(pattern, g.user_dir.as_deref())
                .map_err(|why| key_error(at("save_file"), format!("{pattern:?} {why}")))?;
        }
        // The options editor replaces this file for the player and gives it to `run_as`: it
        // must be that player's own (a shared path would let any player rewrite it for all).
        if let Some(pattern) = &g.rc_file {
            crate::game::saves::check_pattern(pattern, g.user_dir.as_deref()).map_err(|why| {
                let why = if why.starts_with("does not name the player") {
                    "does not name the player (%u, or a %d whose user_dir does): every player \
                     would edit one shared file"
                        .to_owned()
                } else {
                    why
                };
                key_error(at("rc_file"), format!("{pattern:?} {why}"))
            })?;
        }
        if !(1..=MAX_SAVE_BACKUPS_KEPT).contains(&g.save_backups_kept) {
            return Err(key_error(
                at("save_backups_kept"),
                format!(
                    "{} is outside 1-{MAX_SAVE_BACKUPS_KEPT}",
                    g.save_backups_kept
                ),
            ));
        }
        games.push(GameConfig {
            id: g.id,
            name: g.name,
            key,
            command,
            args: g.args,
            env: g.env.into_iter().collect(),
            workdir: g.workdir,
            user_dir: g.user_dir,
            rc_file: g.rc_file,
            rc_template: g.rc_template,
            concurrent_per_account: g.concurrent_per_account,
            detach_grace_seconds: g.detach_grace_seconds,
            save_file: g.save_file,
            save_backups_kept: g.save_backups_kept,
        });
    }
    Ok(games)
}

fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_yaml(text, "test", Vec::new())
    }

    fn with(replace: &str, by: &str) -> String {
        assert!(DEFAULT_YAML.contains(replace), "{replace}");
        DEFAULT_YAML.replacen(replace, by, 1)
    }

    #[test]
    fn default_config_is_valid_and_offers_a_builtin_game() {
        let c = load(DEFAULT_YAML).unwrap();
        assert_eq!(c.ssh.listen.len(), 1);
        assert_eq!(c.ssh.listen[0].port(), 2222);
        assert_eq!(c.http.listen[0].to_string(), "127.0.0.1:8085");
        assert_eq!(c.games[0].id, "nethack");
        assert_eq!(c.games[0].key, 'p');
        assert!(c
            .games
            .iter()
            .any(|g| g.command == GameCommand::Builtin("amulet".into())));
        assert_eq!(c.ssh.kex[0], KexAlg::MlKem768X25519Sha256);
        assert!(c.cores >= 1);
    }

    #[test]
    fn listen_takes_one_address_a_list_or_a_comma_separated_string() {
        let v4: SocketAddr = "0.0.0.0:2222".parse().unwrap();
        let v6: SocketAddr = "[::]:2222".parse().unwrap();
        let c = load(&with("listen: \"0.0.0.0:2222\"", "listen: \"[::]:2222\"")).unwrap();
        assert_eq!(c.ssh.listen, vec![v6]);
        let c = load(&with(
            "listen: \"0.0.0.0:2222\"",
            "listen: [\"0.0.0.0:2222\", \"[::]:2222\"]",
        ))
        .unwrap();
        assert_eq!(c.ssh.listen, vec![v4, v6]);
        let c = load(&with(
            "listen: \"127.0.0.1:8085\"",
            "listen: \"127.0.0.1:8085, [::1]:8085\"",
        ))
        .unwrap();
        assert_eq!(
            c.http.listen,
            vec![
                "127.0.0.1:8085".parse().unwrap(),
                "[::1]:8085".parse().unwrap()
            ]
        );
        let c = Config::from_yaml(
            DEFAULT_YAML,
            "test",
            vec![(
                "DUNGEONGATE_SSH_LISTEN".to_string(),
                "0.0.0.0:2222,[::]:2222".to_string(),
            )],
        )
        .unwrap();
        assert_eq!(c.ssh.listen, vec![v4, v6]);
    }

    #[test]
    fn listen_lists_refuse_repeats_and_emptiness() {
        let e = load(&with(
            "listen: \"0.0.0.0:2222\"",
            "listen: [\"[::]:2222\", \"[::]:2222\"]",
        ))
        .unwrap_err();
        assert!(e.to_string().contains("listed twice"), "{e}");
        let e = load(&with("listen: \"0.0.0.0:2222\"", "listen: []")).unwrap_err();
        assert!(e.to_string().contains("ssh.listen"), "{e}");
        let e = load(&with("listen: \"0.0.0.0:2222\"", "listen: \"[::1]\"")).unwrap_err();
        assert!(e.to_string().contains("host:port"), "{e}");
    }

    #[test]
    fn bad_listen_address_names_the_key_and_value() {
        let e = load(&with("listen: \"0.0.0.0:2222\"", "listen: \"nowhere\"")).unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("ssh.listen") && m.contains("nowhere") && m.contains("host:port"),
            "{m}"
        );
    }

    #[test]
    fn unknown_key_is_rejected_with_its_name() {
        let e = load(&with(
            "max_auth_tries: 6",
            "max_auth_tries: 6\n  max_auth_trys: 7",
        ))
        .unwrap_err();
        assert!(e.to_string().contains("max_auth_trys"), "{e}");
    }

    #[test]
    fn wrong_type_names_the_key_path() {
        let e = load(&with("max_auth_tries: 6", "max_auth_tries: many")).unwrap_err();
        assert!(e.to_string().contains("ssh.max_auth_tries"), "{e}");
    }

    #[test]
    fn unknown_kex_is_rejected_with_the_supported_list() {
        let e = load(&with(
            "- curve25519-sha256\n",
            "- diffie-hellman-group1-sha1\n",
        ))
        .unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("ssh.kex[3]")
                && m.contains("diffie-hellman-group1-sha1")
                && m.contains("mlkem768x25519-sha256"),
            "{m}"
        );
    }

    #[test]
    fn relative_game_command_and_unknown_builtin_are_rejected() {
        let e = load(&with("command: /usr/games/nethack", "command: nethack")).unwrap_err();
        assert!(e.to_string().contains("games[0].command"), "{e}");
        let e = load(&with("builtin:amulet", "builtin:chess")).unwrap_err();
        assert!(e.to_string().contains("games[1].command"), "{e}");
    }

    #[test]
    fn env_overrides_reach_sections_and_top_level_keys() {
        let c = Config::from_yaml(
            DEFAULT_YAML,
            "test",
            vec![
                (
                    "DUNGEONGATE_SSH_LISTEN".to_string(),
                    "127.0.0.1:2022".to_string(),
                ),
                ("DUNGEONGATE_DATA_DIR".to_string(), "/tmp/dg".to_string()),
                ("DUNGEONGATE_CORES".to_string(), "3".to_string()),
                ("UNRELATED".to_string(), "x".to_string()),
            ],
        )
        .unwrap();
        assert_eq!(c.ssh.listen, vec!["127.0.0.1:2022".parse().unwrap()]);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/dg"));
        assert_eq!(c.cores, 3);
        let e = Config::from_yaml(
            DEFAULT_YAML,
            "test",
            vec![("DUNGEONGATE_NOPE_X".to_string(), "1".to_string())],
        )
        .unwrap_err();
        assert!(e.to_string().contains("DUNGEONGATE_NOPE_X"), "{e}");
    }

    #[test]
    fn metrics_path_must_be_absolute_and_outside_health() {
        let c = load(DEFAULT_YAML).unwrap();
        assert!(c.metrics.enabled);
        assert_eq!(c.metrics.path, "/metrics");
        for bad in ["metrics", "/health/metrics"] {
            let e = load(&with("path: \"/metrics\"", &format!("path: \"{bad}\""))).unwrap_err();
            assert!(e.to_string().contains("metrics.path"), "{e}");
        }
    }

    #[test]
    fn run_as_root_is_refused() {
        let e = load(&with("run_as: games", "run_as: root")).unwrap_err();
        assert!(e.to_string().contains("run_as"), "{e}");
    }

    #[test]
    fn duplicate_game_keys_and_reserved_keys_are_refused() {
        let e = load(&with(
            "command: \"builtin:amulet\"",
            "command: \"builtin:amulet\"\n    key: p",
        ))
        .unwrap_err();
        assert!(e.to_string().contains("games[1].key"), "{e}");
        let e = load(&with(
            "command: \"builtin:amulet\"",
            "command: \"builtin:amulet\"\n    key: q",
        ))
        .unwrap_err();
        assert!(e.to_string().contains("lobby key"), "{e}");
    }

    #[test]
    fn an_empty_file_is_the_built_in_configuration() {
        // The `Default`s of the raw sections and `config.yaml` say the same: a file that
        // leaves a key out gets what the documented default says.
        let built_in = format!("{:?}", load(DEFAULT_YAML).unwrap());
        assert_eq!(format!("{:?}", load("").unwrap()), built_in);
        assert_eq!(format!("{:?}", load("# nothing set\n").unwrap()), built_in);
        // Empty sections (every line under them commented out) are defaults too.
        let sections =
            "ssh:\nhttp:\nmetrics:\npassword:\nlimits:\ngame_limits:\nlog:\nrecording:\n";
        assert_eq!(format!("{:?}", load(sections).unwrap()), built_in);
    }

    #[test]
    fn a_file_sets_only_the_keys_it_changes() {
        let c = load("ssh: { listen: \"0.0.0.0:2022\" }").unwrap();
        assert_eq!(c.ssh.listen, vec!["0.0.0.0:2022".parse().unwrap()]);
        assert_eq!(c.ssh.max_auth_tries, 6);
        assert_eq!(c.http.listen, vec!["127.0.0.1:8085".parse().unwrap()]);
        assert_eq!(c.data_dir, PathBuf::from("data"));
        assert_eq!(c.limits.max_connections, 10_000);
        assert_eq!(c.game_limits.cpu_seconds, Some(86_400));
        assert!(c.banner.contains("$SERVERID"));
        let ids: Vec<&str> = c.games.iter().map(|g| g.id.as_str()).collect();
        assert_eq!(ids, ["nethack", "amulet"]);
        assert_eq!(c.recording.dir, PathBuf::from("data/ttyrec"));
    }

    #[test]
    fn a_game_limit_set_to_null_is_no_limit_and_the_rest_keep_their_defaults() {
        let c = load("game_limits: { processes: null, cpu_seconds: 60 }").unwrap();
        assert_eq!(c.game_limits.processes, None);
        assert_eq!(c.game_limits.cpu_seconds, Some(60));
        assert_eq!(c.game_limits.core_bytes, Some(0));
        assert_eq!(c.game_limits.address_space_bytes, Some(4 << 30));
    }

    #[test]
    fn an_explicitly_empty_game_list_is_refused_with_the_way_out() {
        let e = load("games: []").unwrap_err().to_string();
        assert!(
            e.contains("games") && e.contains("leave `games` out"),
            "{e}"
        );
    }

    #[test]
    fn env_overrides_reach_sections_the_file_leaves_out() {
        let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let c = Config::from_yaml(
            "",
            "test",
            env(&[
                ("DUNGEONGATE_LIMITS_MAX_CONNECTIONS", "5"),
                ("DUNGEONGATE_GAME_LIMITS_CPU_SECONDS", "10"),
                ("DUNGEONGATE_DATA_DIR", "/srv/dg"),
                ("DUNGEONGATE_SERVER_ID", "dg1"),
            ]),
        )
        .unwrap();
        assert_eq!(c.limits.max_connections, 5);
        assert_eq!(c.game_limits.cpu_seconds, Some(10));
        assert_eq!(c.data_dir, PathBuf::from("/srv/dg"));
        assert_eq!(c.server_id, "dg1");
        let e = Config::from_yaml(
            "ssh: { listen: \"0.0.0.0:2222\" }",
            "test",
            env(&[("DUNGEONGATE_SSH_LISTNE", "127.0.0.1:1")]),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "config key ssh.listne: not a known key (did you mean `listen`?) \
             (set by DUNGEONGATE_SSH_LISTNE)"
        );
    }

    /// The messages for the bad inputs of issue 12, as an operator sees them.
    const BAD: &[(&str, &str)] = &[
        (
            "limits:\n  max_connections: lots\n",
            "config key limits.max_connections: expected a whole number (0 or more), \
             got the string \"lots\" (test, line 2, column 20)",
        ),
        (
            "limits:\n  max_connections: -5\n",
            "config key limits.max_connections: expected a whole number (0 or more), \
             got -5 (test, line 2, column 20)",
        ),
        (
            "ssh:\n  listen: \"0.0.0.0:2222\"\n  max_auth_trys: 7\n",
            "config key ssh.max_auth_trys: not a known key (did you mean \
             `max_auth_tries`?) (test, line 3, column 18)",
        ),
        (
            "log: { format: xml }\n",
            "config key log.format: \"xml\" is not a log format (expected text or json) \
             (test, line 1, column 16)",
        ),
        (
            "recording:\n  compress: bzip2\n",
            "config key recording.compress: \"bzip2\" is not one of none, gzip, zstd \
             (test, line 2, column 13)",
        ),
        (
            "ssh:\n  listen: nowhere\n",
            "config key ssh.listen: \"nowhere\" is not a socket address (expected \
             host:port, e.g. 0.0.0.0:2222 or [::]:2222) (test, line 2, column 11)",
        ),
        (
            "ssh:\n  listen: 2222\n",
            "config key ssh.listen: expected an address such as \"0.0.0.0:2222\", or a list \
             of them, got 2222 (test, line 2, column 11)",
        ),
        (
            "cores: lots\n",
            "config key cores: expected auto or a number of cores (1 to 256), got the \
             string \"lots\" (test, line 1, column 8)",
        ),
        (
            "metrics: { enabled: maybe }\n",
            "config key metrics.enabled: expected true or false, got the string \"maybe\" \
             (test, line 1, column 21)",
        ),
        (
            "server_id: 3.10\n",
            "config key server_id: expected text, got 3.1 (put it in quotes) \
             (test, line 1, column 12)",
        ),
        (
            "games:\n  - { id: x, name: X }\n",
            "config key games[0]: `command` is missing (it has no default) \
             (test, line 2, column 5)",
        ),
        (
            "- ssh\n",
            "config key (top level): expected a mapping of keys, got a list \
             (test, line 1, column 1)",
        ),
    ];

    #[test]
    fn bad_values_are_reported_as_written_with_their_key_and_line() {
        for (yaml, want) in BAD {
            let got = load(yaml).unwrap_err().to_string();
            assert_eq!(&got, want, "for {yaml:?}");
            for debug_form in [
                "String(",
                "Number(",
                "Bool(",
                "Mapping(",
                "Sequence(",
                "Null",
            ] {
                assert!(!got.contains(debug_form), "{got}");
            }
        }
    }

    #[test]
    fn a_bad_value_from_the_environment_names_the_variable_not_a_line() {
        let e = Config::from_yaml(
            "limits:\n  max_connections: 5\n",
            "test",
            vec![(
                "DUNGEONGATE_LIMITS_MAX_CONNECTIONS".to_string(),
                "lots".to_string(),
            )],
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "config key limits.max_connections: expected a whole number (0 or more), got \
             the string \"lots\" (set by DUNGEONGATE_LIMITS_MAX_CONNECTIONS)"
        );
    }

    #[test]
    fn an_rc_file_must_be_each_players_own() {
        let game = |rc: &str| {
            format!(
                "games:\n  - {{ id: nh, name: NH, command: /bin/cat, user_dir: \"%D/users/%u\", \
                 rc_file: \"{rc}\", rc_template: \"x\" }}\n"
            )
        };
        for bad in ["/etc/nethackrc", "%D/shared/rc", "%d/../../etc/rc"] {
            let e = Config::from_yaml(&game(bad), "test", Vec::new())
                .expect_err(bad)
                .to_string();
            assert!(e.contains("games[0].rc_file"), "{e}");
        }
        for good in ["%d/nethackrc", "/var/games/rc/%u.rc"] {
            assert!(
                Config::from_yaml(&game(good), "test", Vec::new()).is_ok(),
                "{good}"
            );
        }
    }

    #[test]
    fn invalid_yaml_is_reported() {
        assert!(matches!(
            load("ssh: [unclosed"),
            Err(ConfigError::Yaml { .. })
        ));
    }
}
