//! # dungeongate
//!
//! # Layout
//!
//! The layers, the threads and one keystroke's path are drawn in `docs/ARCHITECTURE.md`.
//!
//! - `config`: the YAML configuration, validated into typed settings; env overrides.
//! - `ssh`: the SSH protocol as a sans-io state machine (no sockets, clocks or files).
//! - `session`: one SSH connection above the protocol (sans-io): each session channel's
//!   application (setup, lobby, a game starting, a game running, closing) and the effects it
//!   needs (control requests, spawns, PTY writes, hangups), every late answer named by a
//!   token or a game key that is never reused.
//! - `control`: the control core's account decisions as a state machine (throttles, claims,
//!   revocations), its LMDB and argon2 work handed out as jobs for a pool; the messages data
//!   cores exchange with it.
//! - `reactor`: the only I/O code: a hand-rolled io_uring reactor, one ring and one thread per
//!   core, cross-core queues with ring-to-ring wake-ups, the control core's loop and HTTP.
//! - `auth`: the LMDB account store, argon2id passwords, authorised keys.
//! - `usercli`: `dungeongate user …`, the operator's account commands (and save backups).
//! - `date`: `YYYY-MM-DD` in UTC for the banner and the account listing.
//! - `proxy`: the PROXY protocol v2 header a load balancer puts before the client's bytes.
//! - `pty`: PTYs and game processes (setsid, controlling terminal, pidfd, rlimits, run_as).
//! - `limits`: per-source counts and penalties, CIDR lists, MaxStartups, login throttling.
//! - `lobby`: the menus as a pure state machine: input bytes → screen bytes + actions.
//! - `game`: a configured game turned into a process spec; per-user files without links;
//!   backups of players' saves taken before each start.
//! - `datadir`: the data directory, the host key.
//! - `metrics`: per-core lock-free counters, the Prometheus collector, HTTP /metrics and /health.
//! - `minigame`: a small built-in game, so a fresh machine has something to play.
//! - `screen`: a running game's screen model (repainted for a watcher who attaches) and the
//!   sanitiser that leaves watchers only drawing: no queries, modes, clipboard or titles.
//! - `ttyrec`: game recordings: the sans-io recording buffer, the files, reading them back.
//! - `watch`: how a running game is named across cores, and the watch menu's line for it.
//!
//! `unsafe` is confined to `pty` (ioctls, the clone-to-exec child), the LMDB open in `auth`
//! and `reactor` (the ring's buffers, socket options, the mesh queues);
//! `ssh` and `lobby` forbid it.

pub mod admin;
pub mod admincli;
pub mod auth;
pub mod config;
pub mod control;
pub mod datadir;
pub mod date;
pub mod game;
pub mod limits;
pub mod lobby;
pub mod metrics;
pub mod minigame;
pub mod proxy;
pub mod pty;
pub mod reactor;
pub mod screen;
pub mod session;
pub mod ssh;
pub mod ttyrec;
pub mod usercli;
pub mod watch;
