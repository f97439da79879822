//! Password guessing: per-account and per-source failure backoff, and registrations per
//! source. Owned by the control core (one owner, no sharing); times are ms on its clock.
//!
//! A few failures are free (typos). Past them each failure blocks further attempts for a time
//! that doubles, up to a maximum; attempts while blocked are refused without running argon2
//! (so guessing costs the attacker time and us nothing). A success clears the account's
//! count; a source's count fades once it has been quiet for `forget_ms`.

use super::source::SourceKey;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// Entries kept per table before old, unblocked ones are pruned (bounds memory whatever an
/// attacker varies).
const MAX_ENTRIES: usize = 65_536;

/// One backoff table's rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Failures allowed before the first block.
    pub free_failures: u32,
    /// Length of the first block.
    pub base_ms: u64,
    /// Longest block.
    pub max_ms: u64,
    /// Quiet time after which the failure count starts over.
    pub forget_ms: u64,
}

/// The throttle's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleRules {
    pub account: Backoff,
    pub source: Backoff,
    /// Registrations one source may make per hour.
    pub registrations_per_hour: u32,
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last_failure: u64,
    blocked_until: u64,
}

/// Failures per key under one rule.
struct Table<K> {
    rule: Backoff,
    records: HashMap<K, Record>,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn new(rule: Backoff) -> Self {
        Table {
            rule,
            records: HashMap::new(),
        }
    }

    fn blocked_until(&self, key: &K, now: u64) -> Option<u64> {
        self.records
            .get(key)
            .map(|r| r.blocked_until)
            .filter(|&until| until > now)
    }

    /// Returns true when this failure starts a block.
    fn fail(&mut self, key: &K, now: u64) -> bool {
        if self.records.len() >= MAX_ENTRIES && !self.records.contains_key(key) {
            let forget = self.rule.forget_ms;
            self.records
                .retain(|_, r| r.blocked_until > now || r.last_failure + forget > now);
            if self.records.len() >= MAX_ENTRIES {
                // Everything is fresh: drop the eighth whose blocks end first, so the next
                // MAX_ENTRIES / 8 new keys need no scan (amortised constant time).
                let mut ends: Vec<(u64, K)> = self
                    .records
                    .iter()
                    .map(|(k, r)| (r.blocked_until.max(r.last_failure), k.clone()))
                    .collect();
                let cut = ends.len() / 8;
                ends.select_nth_unstable_by_key(cut, |(end, _)| *end);
                for (_, k) in ends.iter().take(cut) {
                    self.records.remove(k);
                }
            }
        }
        let rule = self.rule;
        let r = self.records.entry(key.clone()).or_insert(Record {
            failures: 0,
            last_failure: now,
            blocked_until: 0,
        });
        if r.last_failure
            .max(r.blocked_until)
            .saturating_add(rule.forget_ms)
            < now
        {
            r.failures = 0;
        }
        r.failures = r.failures.saturating_add(1);
        r.last_failure = now;
        if r.failures <= rule.free_failures {
            return false;
        }
        let doublings = (r.failures - rule.free_failures - 1).min(30);
        let length = rule.base_ms.saturating_mul(1 << doublings).min(rule.max_ms);
        r.blocked_until = now.saturating_add(length);
        true
    }

    fn clear(&mut self, key: &K) {
        self.records.remove(key);
    }
}

/// Why an attempt is refused before it is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    Account { until: u64 },
    Source { until: u64 },
}

impl Blocked {
    pub fn until(self) -> u64 {
        match self {
            Blocked::Account { until } | Blocked::Source { until } => until,
        }
    }
}

pub struct Throttle {
    accounts: Table<String>,
    sources: Table<SourceKey>,
    registrations: HashMap<SourceKey, VecDeque<u64>>,
    registrations_per_hour: u32,
}

const HOUR_MS: u64 = 3_600_000;

impl Throttle {
    pub fn new(rules: ThrottleRules) -> Throttle {
        Throttle {
            accounts: Table::new(rules.account),
            sources: Table::new(rules.source),
            registrations: HashMap::new(),
            registrations_per_hour: rules.registrations_per_hour,
        }
    }

    /// New rules (a configuration reload); what was counted so far stays.
    pub fn set_rules(&mut self, rules: ThrottleRules) {
        self.accounts.rule = rules.account;
        self.sources.rule = rules.source;
        self.registrations_per_hour = rules.registrations_per_hour;
    }

    /// May `source` try a password for `account` (None: a name that is no account) now?
    pub fn check(&self, account: Option<&str>, source: SourceKey, now: u64) -> Result<(), Blocked> {
        if let Some(until) = self.sources.blocked_until(&source, now) {
            return Err(Blocked::Source { until });
        }
        if let Some(until) = account.and_then(|a| self.accounts.blocked_until(&a.to_owned(), now)) {
            return Err(Blocked::Account { until });
        }
        Ok(())
    }

    /// A wrong password (or key). Returns how many blocks it started (0, 1 or 2), for
    /// `auth_lockouts_total`, and the account's failure count.
    pub fn failed(&mut self, account: Option<&str>, source: SourceKey, now: u64) -> u32 {
        let mut started = u32::from(self.sources.fail(&source, now));
        if let Some(a) = account {
            started += u32::from(self.accounts.fail(&a.to_owned(), now));
        }
        started
    }

    /// Failures counted against `account` right now.
    pub fn account_failures(&self, account: &str) -> u32 {
        self.accounts.records.get(account).map_or(0, |r| r.failures)
    }

    /// A successful login clears the account's count (not the source's: one good account
    /// must not reset a guesser's address).
    pub fn succeeded(&mut self, account: &str) {
        self.accounts.clear(&account.to_owned());
    }

    /// Whether `source` may register another account now; counts it when it may.
    pub fn allow_registration(&mut self, source: SourceKey, now: u64) -> bool {
        if self.registrations.len() >= MAX_ENTRIES && !self.registrations.contains_key(&source) {
            self.registrations
                .retain(|_, times| times.back().is_some_and(|&t| t + HOUR_MS > now));
            if self.registrations.len() >= MAX_ENTRIES {
                return false;
            }
        }
        let times = self.registrations.entry(source).or_default();
        while times.front().is_some_and(|&t| t + HOUR_MS <= now) {
            times.pop_front();
        }
        if times.len() >= self.registrations_per_hour as usize {
            return false;
        }
        times.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: ThrottleRules = ThrottleRules {
        account: Backoff {
            free_failures: 3,
            base_ms: 1_000,
            max_ms: 4_000,
            forget_ms: 60_000,
        },
        source: Backoff {
            free_failures: 5,
            base_ms: 2_000,
            max_ms: 60_000,
            forget_ms: 60_000,
        },
        registrations_per_hour: 2,
    };

    fn src(s: &str) -> SourceKey {
        SourceKey::of(s.parse().unwrap())
    }

    #[test]
    fn an_account_is_blocked_after_its_free_failures_for_doubling_times() {
        let mut t = Throttle::new(RULES);
        let (a, s1, s2, s3) = (
            Some("alice"),
            src("192.0.2.1"),
            src("192.0.2.2"),
            src("192.0.2.3"),
        );
        // Failures from different sources count against the account.
        assert_eq!(t.failed(a, s1, 0), 0);
        assert_eq!(t.failed(a, s2, 0), 0);
        assert_eq!(t.failed(a, s3, 0), 0);
        assert!(t.check(a, s1, 0).is_ok());
        assert_eq!(t.failed(a, s1, 0), 1, "the fourth failure starts a block");
        assert_eq!(t.check(a, s3, 500), Err(Blocked::Account { until: 1_000 }));
        assert!(
            t.check(Some("bob"), s3, 500).is_ok(),
            "other accounts are not blocked"
        );
        assert!(t.check(a, s3, 1_000).is_ok());
        t.failed(a, s2, 1_000);
        assert_eq!(
            t.check(a, s2, 1_000),
            Err(Blocked::Account { until: 3_000 })
        );
        t.failed(a, s3, 3_000);
        t.failed(a, s1, 7_000);
        assert_eq!(
            t.check(a, s2, 7_000),
            Err(Blocked::Account { until: 11_000 }),
            "capped"
        );
        t.succeeded("alice");
        assert!(t.check(a, s2, 7_000).is_ok());
    }

    #[test]
    fn a_source_is_blocked_across_accounts_and_forgiven_after_quiet() {
        let mut t = Throttle::new(RULES);
        let s = src("2001:db8::1");
        for i in 0..5 {
            t.failed(Some(&format!("user{i}")), s, 0);
        }
        assert!(t.check(Some("other"), s, 0).is_ok());
        assert_eq!(t.failed(None, s, 0), 1);
        assert_eq!(
            t.check(Some("other"), s, 1),
            Err(Blocked::Source { until: 2_000 })
        );
        assert_eq!(
            t.check(None, src("2001:db8:0:0:ffff::9"), 1),
            Err(Blocked::Source { until: 2_000 }),
            "the same /64"
        );
        // Quiet for longer than forget_ms: the count starts over.
        assert_eq!(t.failed(None, s, 100_000), 0);
    }

    #[test]
    fn registrations_per_source_per_hour() {
        let mut t = Throttle::new(RULES);
        let s = src("198.51.100.7");
        assert!(t.allow_registration(s, 0));
        assert!(t.allow_registration(s, 10));
        assert!(!t.allow_registration(s, 20));
        assert!(t.allow_registration(src("198.51.100.8"), 20));
        assert!(t.allow_registration(s, HOUR_MS));
    }

    #[test]
    fn tables_stay_bounded_whatever_is_varied() {
        let mut t = Throttle::new(RULES);
        for i in 0..(MAX_ENTRIES as u32 + 1000) {
            let ip = std::net::Ipv4Addr::from(i);
            t.failed(Some(&format!("n{i}")), SourceKey::of(ip.into()), 0);
        }
        assert!(t.sources.records.len() <= MAX_ENTRIES);
        assert!(t.accounts.records.len() <= MAX_ENTRIES);
    }
}
