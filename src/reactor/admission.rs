//! Who may open a connection: the allow/deny lists, `max_connections`, MaxStartups, and the
//! per-source counts and penalties (the shared [`SourceTable`]). Also what an admitted
//! connection reports back: its login, its end, and the offences that earn its source a
//! penalty.

use super::shared::Shared;
use crate::config::LimitsConfig;
use crate::limits::source::{PenaltyRule, Refusal, SourceLimits};
use crate::limits::SourceKey;
use crate::metrics::RejectReason;
use std::net::IpAddr;
use std::sync::atomic::Ordering;

/// An admitted connection's place in the counts.
#[derive(Debug, Clone, Copy)]
pub struct Admitted {
    source: SourceKey,
    /// Counted in the per-source table (not exempt).
    counted: bool,
}

/// Why a connection is refused, and what it is told.
pub struct Rejected {
    pub reason: RejectReason,
    pub message: String,
}

fn reject(reason: RejectReason, message: impl Into<String>) -> Rejected {
    Rejected {
        reason,
        message: message.into(),
    }
}

/// Decide on a new connection from `ip`; `open` is the number open on all cores including
/// this one. An admitted connection must be reported to [`logged_in`] and [`ended`].
/// `limits`: the core's configuration's (a reload changes them).
pub fn admit(
    shared: &Shared,
    limits: &LimitsConfig,
    ip: IpAddr,
    open: usize,
    now_ms: u64,
) -> Result<Admitted, Rejected> {
    if limits.deny.contains(ip) || (!limits.allow.is_empty() && !limits.allow.contains(ip)) {
        return Err(reject(
            RejectReason::Denied,
            "connections from your address are not accepted here",
        ));
    }
    if open > limits.max_connections {
        let max = limits.max_connections;
        return Err(reject(
            RejectReason::Full,
            format!("server full: {max}/{max} connections"),
        ));
    }
    let source = limits.source_grouping.key(ip);
    if limits.exempt.contains(ip) {
        shared.unauthenticated.fetch_add(1, Ordering::Relaxed);
        return Ok(Admitted {
            source,
            counted: false,
        });
    }
    // MaxStartups spares a source's first connection still logging in: a person connects
    // once at a time, a flood needs many. Without this, any ~100 half-open connections from
    // anywhere would lock every new player out (measured with `loadtest flood`); with it, a
    // flood only takes slots per address it owns (an IPv4 address, an IPv6 /64), each of
    // which costs it one connection and us a few KiB.
    let starting = shared.unauthenticated.load(Ordering::Relaxed);
    let starting = u32::try_from(starting).unwrap_or(u32::MAX);
    if starting >= limits.max_startups.start
        && shared.sources.unauthenticated(source) > 0
        && limits.max_startups.refuse(starting, roll())
    {
        return Err(reject(
            RejectReason::Startups,
            "the server is busy with other logins; try again in a moment",
        ));
    }
    let per_source = SourceLimits {
        max_connections: limits.per_source_max_connections,
        max_unauthenticated: limits.per_source_max_unauthenticated,
    };
    match shared.sources.admit(source, per_source, now_ms) {
        Ok(()) => {
            shared.unauthenticated.fetch_add(1, Ordering::Relaxed);
            Ok(Admitted {
                source,
                counted: true,
            })
        }
        Err(Refusal::TooManyConnections) => Err(reject(
            RejectReason::PerSource,
            format!(
                "too many connections from your address ({} at most)",
                limits.per_source_max_connections
            ),
        )),
        Err(Refusal::TooManyUnauthenticated) => Err(reject(
            RejectReason::PerSourceUnauthenticated,
            format!(
                "too many logins in progress from your address ({} at most)",
                limits.per_source_max_unauthenticated
            ),
        )),
        Err(Refusal::Penalized { until }) => {
            let secs = until.saturating_sub(now_ms).div_ceil(1000).max(1);
            Err(reject(
                RejectReason::Penalized,
                format!(
                    "your address is refused for {secs} s after failed logins or protocol errors"
                ),
            ))
        }
    }
}

/// The connection logged in (once).
pub fn logged_in(shared: &Shared, a: Admitted) {
    decrement(&shared.unauthenticated);
    if a.counted {
        shared.sources.authenticated(a.source);
    }
}

/// The connection ended; `authenticated`: it had logged in; `offence`: it failed to log in,
/// ran out of login grace or broke the protocol, which earns its source a penalty.
pub fn ended(
    shared: &Shared,
    limits: &LimitsConfig,
    a: Admitted,
    authenticated: bool,
    offence: bool,
    now_ms: u64,
) {
    if !authenticated {
        decrement(&shared.unauthenticated);
    }
    if !a.counted {
        return;
    }
    shared.sources.closed(a.source, authenticated);
    if offence && limits.penalty_seconds > 0 {
        let rule = PenaltyRule {
            base_ms: limits.penalty_seconds.saturating_mul(1000),
            max_ms: limits
                .penalty_max_seconds
                .max(limits.penalty_seconds)
                .saturating_mul(1000),
            forget_ms: limits.penalty_max_seconds.saturating_mul(1000).max(60_000),
        };
        shared.sources.penalize(a.source, rule, now_ms);
    }
}

fn decrement(v: &std::sync::atomic::AtomicUsize) {
    let _ = v.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |x| x.checked_sub(1));
}

/// A uniformly random number in 0..100 (only drawn while MaxStartups is dropping).
fn roll() -> u32 {
    let mut b = [0u8; 4];
    crate::ssh::random::fill(&mut b);
    u32::from_le_bytes(b) % 100
}
