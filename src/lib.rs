//! # dungeongate
//!
//! # Layout
//!
//! - `config`: the YAML configuration, validated into typed settings; env overrides.
//! - `ssh`: the SSH protocol as a sans-io state machine (no sockets, clocks or files).
//! - `auth`: the LMDB account store, argon2id passwords, authorised keys.
//! - `usercli`: `dungeongate user …`, the operator's account commands.
//! - `date`: `YYYY-MM-DD` in UTC for the banner and the account listing.
//! - `proxy`: the PROXY protocol v2 header a load balancer puts before the client's bytes.
//! - `pty`: PTYs and game processes (setsid, controlling terminal, pidfd, rlimits, run_as).
//! - `limits`: per-source counts and penalties, CIDR lists, MaxStartups, login throttling.
//! - `lobby`: the menus as a pure state machine: input bytes → screen bytes + actions.
//! - `metrics`: per-core lock-free counters, the Prometheus collector, HTTP /metrics and /health.
//! - `minigame`: a small built-in game, so a fresh machine has something to play.
//!
//! `unsafe` is confined to `pty` (ioctls, the clone-to-exec child), the LMDB open in `auth`
//! and the listening sockets' options in `reactor::listen`;
//! `ssh` and `lobby` forbid it.

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
pub mod session;
pub mod ssh;
pub mod usercli;
