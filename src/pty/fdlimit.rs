//! The server's file-descriptor budget (`RLIMIT_NOFILE`).
//!
//! Each connection with a game holds a socket, a PTY master and a pidfd, so 10,000 players need
//! some 30,000 descriptors while distributions start services with a soft limit of 1024. The
//! server raises its own limit at start-up to what `limits.max_connections` needs (the hard
//! limit too when it may, as root), and games get the limit the server was started with back:
//! a game has no use for tens of thousands of descriptors, and some programs walk all of them.

use std::io;
use std::sync::OnceLock;

/// Descriptors one connection holds: its socket. A lobby session needs nothing more.
pub const FDS_PER_CONNECTION: u64 = 1;
/// Descriptors a running game adds: PTY master and pidfd. (The PTY slave is open only while a
/// game starts; the reserve covers those.)
pub const FDS_PER_GAME: u64 = 2;
/// Descriptors the server needs besides connections: listeners, io_uring rings, eventfds of
/// the cross-core channels, LMDB, the HTTP endpoint's clients, log files, and the slaves of
/// games being started.
pub const FDS_RESERVED: u64 = 512;

/// The limit the process was started with, restored in game children.
static INHERITED: OnceLock<libc::rlimit> = OnceLock::new();

/// What start-up did to the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdBudget {
    /// Descriptors `max_connections` needs.
    pub needed: u64,
    /// The soft limit now in force.
    pub limit: u64,
}

impl FdBudget {
    /// Connections the limit allows (in the lobby; games are admitted one by one while
    /// [`game_fits`] says there is room).
    pub fn connections_allowed(&self) -> u64 {
        self.limit.saturating_sub(FDS_RESERVED) / FDS_PER_CONNECTION
    }
}

/// Descriptors needed for `max_connections` players, each with a game.
pub fn needed_for(max_connections: usize) -> u64 {
    (max_connections as u64)
        .saturating_mul(FDS_PER_CONNECTION + FDS_PER_GAME)
        .saturating_add(FDS_RESERVED)
}

/// Whether one more game fits under `limit` with `connections` open and `games` running or
/// starting: a game refused here is told the server is full, where running out of
/// descriptors would fail accepts and spawns at random.
pub fn game_fits(limit: u64, connections: usize, games: usize) -> bool {
    let used = (connections as u64)
        .saturating_mul(FDS_PER_CONNECTION)
        .saturating_add((games as u64 + 1).saturating_mul(FDS_PER_GAME))
        .saturating_add(FDS_RESERVED);
    used <= limit
}

/// Raises `RLIMIT_NOFILE` towards what `max_connections` needs: the soft limit up to the hard
/// one, and the hard one as well when the kernel lets us (root, up to `fs.nr_open`). Never
/// lowers a limit. Remembers the original limit for [`inherited`].
pub fn raise_for(max_connections: usize) -> io::Result<FdBudget> {
    let original = get()?;
    let _ = INHERITED.set(original);
    let needed = needed_for(max_connections);
    if original.rlim_cur >= needed {
        return Ok(FdBudget {
            needed,
            limit: original.rlim_cur,
        });
    }
    if original.rlim_max < needed {
        let both = libc::rlimit {
            rlim_cur: needed,
            rlim_max: needed,
        };
        if set(&both).is_ok() {
            return Ok(FdBudget {
                needed,
                limit: needed,
            });
        }
    }
    let soft = libc::rlimit {
        rlim_cur: needed.min(original.rlim_max),
        rlim_max: original.rlim_max,
    };
    set(&soft)?;
    Ok(FdBudget {
        needed,
        limit: soft.rlim_cur,
    })
}

/// The limit the process had before [`raise_for`], if it was called.
pub fn inherited() -> Option<libc::rlimit> {
    INHERITED.get().copied()
}

fn get() -> io::Result<libc::rlimit> {
    super::rlimit::current(libc::RLIMIT_NOFILE)
}

fn set(lim: &libc::rlimit) -> io::Result<()> {
    super::rlimit::set(libc::RLIMIT_NOFILE, lim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_counts_one_descriptor_per_connection_and_two_per_game_plus_a_reserve() {
        assert_eq!(needed_for(0), FDS_RESERVED);
        assert_eq!(needed_for(10_000), 30_000 + FDS_RESERVED);
        assert_eq!(needed_for(usize::MAX), u64::MAX);
        let budget = FdBudget {
            needed: needed_for(10_000),
            limit: 20_000,
        };
        assert_eq!(budget.connections_allowed(), 20_000 - FDS_RESERVED);
        // 10,000 in the lobby fit under 20,000; then games until the descriptors run out.
        let room = 20_000 - FDS_RESERVED - 10_000;
        assert!(game_fits(20_000, 10_000, (room / 2 - 1) as usize));
        assert!(!game_fits(20_000, 10_000, (room / 2) as usize));
    }

    #[test]
    fn raising_never_lowers_the_limit_and_remembers_the_original() {
        let before = get().expect("getrlimit");
        let budget = raise_for(1).expect("raise");
        let after = get().expect("getrlimit");
        assert!(after.rlim_cur >= before.rlim_cur);
        assert!(after.rlim_max >= before.rlim_max);
        assert_eq!(budget.limit, after.rlim_cur);
        assert!(inherited().is_some());
    }
}
