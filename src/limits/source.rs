//! Sources: the unit per-source limits count by, and the table every core shares to count
//! them.
//!
//! A source is one IPv4 address or one IPv6 /64 (what one host, or one provider customer,
//! usually has). The table is a count-min sketch of lock-free atomics: each source maps to two
//! slots through two independently keyed SipHash functions, writes go to both and reads take
//! the smaller value, so a count or penalty can only be overstated when another source shares
//! *both* slots. No lock, no allocation after start, fixed memory, and it works whichever
//! core accepted the connection (SO_REUSEPORT spreads one source over all of them).

use super::cidr::canonical;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Slots in the table (a power of two); 24 bytes each.
const SLOTS: usize = 1 << 16;

/// One IPv4 address or one IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceKey(u128);

impl SourceKey {
    /// The source of `ip` with the default grouping (IPv4 /32, IPv6 /64).
    pub fn of(ip: IpAddr) -> SourceKey {
        SourceGrouping::default().key(ip)
    }
}

/// How addresses are grouped into sources: the prefix length that counts as one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceGrouping {
    /// IPv4 prefix (32: one address).
    pub v4: u8,
    /// IPv6 prefix (64: one subnet, what one host or customer usually gets).
    pub v6: u8,
}

impl Default for SourceGrouping {
    fn default() -> Self {
        SourceGrouping { v4: 32, v6: 64 }
    }
}

impl SourceGrouping {
    /// The source `ip` belongs to.
    pub fn key(&self, ip: IpAddr) -> SourceKey {
        let keep = |v: u128, width: u32, prefix: u8| {
            let prefix = u32::from(prefix).min(width);
            if prefix == 0 {
                0
            } else {
                (v >> (width - prefix)) << (width - prefix)
            }
        };
        match canonical(ip) {
            IpAddr::V4(v4) => SourceKey((1 << 127) | keep(u128::from(u32::from(v4)), 32, self.v4)),
            IpAddr::V6(v6) => SourceKey(keep(u128::from(v6), 128, self.v6)),
        }
    }
}

#[derive(Default)]
struct Slot {
    /// Open connections.
    connections: AtomicU32,
    /// Open connections not yet authenticated.
    unauthenticated: AtomicU32,
    /// Offences counted towards the current penalty (doubling its length each time).
    offences: AtomicU32,
    /// Refused until this time (ms on the caller's clock); 0 when not penalized.
    penalized_until: AtomicU64,
}

/// Why a source may not open another connection now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// It has `per_source_max_connections` open.
    TooManyConnections,
    /// It has `per_source_max_unauthenticated` not yet logged in.
    TooManyUnauthenticated,
    /// A penalty runs until this time (ms).
    Penalized { until: u64 },
}

/// Per-source limits.
#[derive(Debug, Clone, Copy)]
pub struct SourceLimits {
    pub max_connections: u32,
    pub max_unauthenticated: u32,
}

/// How penalties grow: the first offence costs `base_ms`, each further one doubles it, up to
/// `max_ms`; a source with no offence for `forget_ms` past its penalty starts over.
#[derive(Debug, Clone, Copy)]
pub struct PenaltyRule {
    pub base_ms: u64,
    pub max_ms: u64,
    pub forget_ms: u64,
}

pub struct SourceTable {
    slots: Box<[Slot]>,
    hash_a: RandomState,
    hash_b: RandomState,
}

impl Default for SourceTable {
    fn default() -> Self {
        SourceTable::new()
    }
}

impl SourceTable {
    pub fn new() -> SourceTable {
        SourceTable {
            slots: (0..SLOTS).map(|_| Slot::default()).collect(),
            hash_a: RandomState::new(),
            hash_b: RandomState::new(),
        }
    }

    fn pair(&self, key: SourceKey) -> [&Slot; 2] {
        let a = self.hash_a.hash_one(key) as usize & (SLOTS - 1);
        let mut b = self.hash_b.hash_one(key) as usize & (SLOTS - 1);
        if b == a {
            b = (a + 1) & (SLOTS - 1);
        }
        [&self.slots[a], &self.slots[b]]
    }

    /// Admit a new, unauthenticated connection from `key`, or say why not. An admitted one
    /// must later be reported with [`Self::authenticated`] (if it logs in) and
    /// [`Self::closed`].
    pub fn admit(&self, key: SourceKey, limits: SourceLimits, now: u64) -> Result<(), Refusal> {
        let slots = self.pair(key);
        let until = min_of(&slots, |s| s.penalized_until.load(Ordering::Relaxed));
        if until > now {
            return Err(Refusal::Penalized { until });
        }
        if min_of(&slots, |s| u64::from(s.connections.load(Ordering::Relaxed)))
            >= u64::from(limits.max_connections)
        {
            return Err(Refusal::TooManyConnections);
        }
        if min_of(&slots, |s| {
            u64::from(s.unauthenticated.load(Ordering::Relaxed))
        }) >= u64::from(limits.max_unauthenticated)
        {
            return Err(Refusal::TooManyUnauthenticated);
        }
        for s in slots {
            s.connections.fetch_add(1, Ordering::Relaxed);
            s.unauthenticated.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// An admitted connection logged in.
    pub fn authenticated(&self, key: SourceKey) {
        for s in self.pair(key) {
            decrement(&s.unauthenticated);
        }
    }

    /// An admitted connection ended (`authenticated`: whether it had logged in).
    pub fn closed(&self, key: SourceKey, authenticated: bool) {
        for s in self.pair(key) {
            decrement(&s.connections);
            if !authenticated {
                decrement(&s.unauthenticated);
            }
        }
    }

    /// Count an offence (failed authentication, login grace run out, protocol error): the
    /// source is refused for a time that doubles with each offence. Returns the new end of
    /// the penalty.
    pub fn penalize(&self, key: SourceKey, rule: PenaltyRule, now: u64) -> u64 {
        let mut end = 0;
        for s in self.pair(key) {
            let until = s.penalized_until.load(Ordering::Relaxed);
            if until.saturating_add(rule.forget_ms) < now {
                s.offences.store(0, Ordering::Relaxed);
            }
            let n = s.offences.fetch_add(1, Ordering::Relaxed).min(40);
            let length = rule
                .base_ms
                .saturating_mul(1u64 << n.min(30))
                .min(rule.max_ms);
            let new_until = now.saturating_add(length);
            s.penalized_until.fetch_max(new_until, Ordering::Relaxed);
            end = end.max(new_until);
        }
        end
    }

    /// Connections from `key` not yet logged in.
    pub fn unauthenticated(&self, key: SourceKey) -> u32 {
        let slots = self.pair(key);
        min_of(&slots, |s| {
            u64::from(s.unauthenticated.load(Ordering::Relaxed))
        }) as u32
    }

    /// Connections open from `key` (for tests and admin views).
    pub fn connections(&self, key: SourceKey) -> u32 {
        let slots = self.pair(key);
        min_of(&slots, |s| u64::from(s.connections.load(Ordering::Relaxed))) as u32
    }
}

fn min_of(slots: &[&Slot; 2], f: impl Fn(&Slot) -> u64) -> u64 {
    f(slots[0]).min(f(slots[1]))
}

fn decrement(v: &AtomicU32) {
    let _ = v.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |x| x.checked_sub(1));
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: SourceLimits = SourceLimits {
        max_connections: 3,
        max_unauthenticated: 2,
    };
    const RULE: PenaltyRule = PenaltyRule {
        base_ms: 1_000,
        max_ms: 8_000,
        forget_ms: 60_000,
    };

    fn key(s: &str) -> SourceKey {
        SourceKey::of(s.parse().unwrap())
    }

    #[test]
    fn the_grouping_is_configurable() {
        let g = SourceGrouping { v4: 24, v6: 48 };
        let k = |s: &str| g.key(s.parse().unwrap());
        assert_eq!(k("192.0.2.1"), k("192.0.2.200"));
        assert_ne!(k("192.0.2.1"), k("192.0.3.1"));
        assert_eq!(k("2001:db8:1:2::1"), k("2001:db8:1:ffff::1"));
        assert_ne!(k("2001:db8:1::1"), k("2001:db8:2::1"));
    }

    #[test]
    fn ipv4_is_per_address_and_ipv6_per_64() {
        assert_ne!(key("192.0.2.1"), key("192.0.2.2"));
        assert_eq!(key("192.0.2.1"), key("::ffff:192.0.2.1"));
        assert_eq!(key("2001:db8:0:1::1"), key("2001:db8:0:1:ffff::2"));
        assert_ne!(key("2001:db8:0:1::1"), key("2001:db8:0:2::1"));
    }

    #[test]
    fn unauthenticated_and_total_connections_are_capped_per_source() {
        let t = SourceTable::new();
        let a = key("192.0.2.1");
        assert!(t.admit(a, LIMITS, 0).is_ok());
        assert!(t.admit(a, LIMITS, 0).is_ok());
        assert_eq!(t.admit(a, LIMITS, 0), Err(Refusal::TooManyUnauthenticated));
        // Another source is not affected.
        assert!(t.admit(key("192.0.2.2"), LIMITS, 0).is_ok());
        t.authenticated(a);
        assert!(t.admit(a, LIMITS, 0).is_ok());
        t.authenticated(a);
        assert_eq!(t.admit(a, LIMITS, 0), Err(Refusal::TooManyConnections));
        t.closed(a, true);
        assert!(t.admit(a, LIMITS, 0).is_ok());
        assert_eq!(t.connections(a), 3);
    }

    #[test]
    fn penalties_double_up_to_the_maximum_and_are_forgotten() {
        let t = SourceTable::new();
        let a = key("2001:db8::7");
        assert_eq!(t.penalize(a, RULE, 10_000), 11_000);
        assert_eq!(
            t.admit(a, LIMITS, 10_500),
            Err(Refusal::Penalized { until: 11_000 })
        );
        assert!(t.admit(a, LIMITS, 11_000).is_ok());
        assert_eq!(t.penalize(a, RULE, 11_000), 13_000);
        assert_eq!(t.penalize(a, RULE, 11_000), 15_000);
        assert_eq!(t.penalize(a, RULE, 11_000), 19_000);
        assert_eq!(t.penalize(a, RULE, 11_000), 19_000, "capped at max_ms");
        // Long after the last penalty ended, the count starts over.
        assert_eq!(t.penalize(a, RULE, 200_000), 201_000);
        assert!(t.admit(key("2001:db8:1::7"), LIMITS, 10_500).is_ok());
    }

    #[test]
    fn a_fresh_source_is_rarely_refused_while_thousands_sit_at_their_cap() {
        let t = SourceTable::new();
        let limits = SourceLimits {
            max_connections: 10,
            max_unauthenticated: 10,
        };
        // 2,000 sources with 10 connections each, all at the cap.
        for i in 0..2_000u32 {
            let k = SourceKey::of(std::net::Ipv4Addr::from(0x0a00_0000 + i).into());
            for _ in 0..10 {
                let _ = t.admit(k, limits, 0);
            }
        }
        // A fresh source is refused only if both its slots are shared with capped sources:
        // about (4,000 / 65,536)^2, well under 1%.
        let refused = (0..10_000u32)
            .filter(|i| {
                let k = SourceKey::of(std::net::Ipv4Addr::from(0xc000_0000 + i).into());
                t.admit(k, limits, 0).is_err()
            })
            .count();
        assert!(refused < 200, "{refused} of 10,000 fresh sources refused");
    }
}
