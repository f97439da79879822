//! OpenSSH's `MaxStartups start:rate:full`: past `start` unauthenticated connections a new one
//! is refused with probability `rate`%, rising linearly to 100% at `full`.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxStartups {
    pub start: u32,
    pub rate: u32,
    pub full: u32,
}

impl MaxStartups {
    /// Whether to refuse a new connection while `unauthenticated` are open; `roll` is a
    /// uniformly random number in `0..100`.
    pub fn refuse(&self, unauthenticated: u32, roll: u32) -> bool {
        if unauthenticated < self.start {
            return false;
        }
        if unauthenticated >= self.full {
            return true;
        }
        let span = u64::from(self.full - self.start);
        let over = u64::from(unauthenticated - self.start);
        let p = u64::from(self.rate) + (100 - u64::from(self.rate)) * over / span;
        u64::from(roll) < p
    }
}

impl FromStr for MaxStartups {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err =
            || format!("{s:?} is not start:rate:full (e.g. 10:30:100; start < full, rate 0-100)");
        let parts: Vec<&str> = s.trim().split(':').collect();
        let n = |i: usize| -> Result<u32, String> {
            parts
                .get(i)
                .and_then(|p| p.trim().parse::<u32>().ok())
                .ok_or_else(err)
        };
        let m = match parts.len() {
            1 => MaxStartups {
                start: n(0)?,
                rate: 100,
                full: n(0)?,
            },
            3 => MaxStartups {
                start: n(0)?,
                rate: n(1)?,
                full: n(2)?,
            },
            _ => return Err(err()),
        };
        if m.start == 0 || m.start > m.full || m.rate > 100 {
            return Err(err());
        }
        Ok(m)
    }
}

impl fmt::Display for MaxStartups {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.start, self.rate, self.full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_nothing_below_start_some_between_and_everything_at_full() {
        let m: MaxStartups = "10:30:100".parse().unwrap();
        assert!((0..100).all(|roll| !m.refuse(9, roll)));
        let at_start = (0..100).filter(|&roll| m.refuse(10, roll)).count();
        assert_eq!(at_start, 30);
        let halfway = (0..100).filter(|&roll| m.refuse(55, roll)).count();
        assert_eq!(halfway, 65);
        assert!((0..100).all(|roll| m.refuse(100, roll)));
    }

    #[test]
    fn parses_openssh_forms_and_refuses_nonsense() {
        assert_eq!(
            "10".parse::<MaxStartups>().unwrap(),
            MaxStartups {
                start: 10,
                rate: 100,
                full: 10
            }
        );
        for bad in ["", "10:30", "0:30:100", "100:30:10", "10:101:100", "a:b:c"] {
            assert!(bad.parse::<MaxStartups>().is_err(), "{bad}");
        }
    }
}
