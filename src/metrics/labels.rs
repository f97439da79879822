//! The fixed label values of the catalogue (SPEC §3), as small enums that index arrays of
//! cells. A label set is known at compile time (or, for games, at start-up), so recording an
//! event is an array index, never a hash-map lookup or an allocation; and no label can carry
//! a user-supplied string (cardinality, privacy).

/// Defines a label enum with `ALL`, `COUNT`, `index()` and `as_str()`.
macro_rules! label_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $variant),+
        }

        impl $name {
            /// Every value, in export order (`ALL[v.index()] == v`).
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// Number of values (array length of a family indexed by this label).
            pub const COUNT: usize = Self::ALL.len();

            /// Position in `ALL`, the index into a family's array.
            #[inline]
            pub const fn index(self) -> usize {
                self as usize
            }

            /// The label value as exported.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $s),+
                }
            }
        }
    };
}

label_enum! {
    /// `ssh_connections_total{status}`.
    ConnStatus {
        /// A TCP connection was admitted (counted once per connection).
        Accepted => "accepted",
        /// Refused by policy before any SSH: server full, per-IP limit, deny list.
        Rejected => "rejected",
        /// Admitted, but ended before the SSH handshake completed (protocol error, kex
        /// failure, login grace timeout, peer vanished). A subset of `accepted`.
        Failed => "failed",
    }
}

label_enum! {
    /// `ssh_authentication_attempts_total{method}`.
    AuthMethod {
        None => "none",
        Password => "password",
        PublicKey => "publickey",
    }
}

label_enum! {
    /// `status` of auth attempts, spawns, saves, database operations, terminal sessions.
    Outcome {
        Success => "success",
        Failure => "failure",
    }
}

impl Outcome {
    /// `Success` if `ok`.
    #[inline]
    pub const fn from_ok(ok: bool) -> Outcome {
        if ok {
            Outcome::Success
        } else {
            Outcome::Failure
        }
    }
}

label_enum! {
    /// `direction` of byte counters, seen from the server.
    Direction {
        /// Received by the server (from the SSH peer; for a PTY: typed by the player).
        In => "in",
        /// Sent by the server (to the SSH peer; for a PTY: output of the game).
        Out => "out",
    }
}

label_enum! {
    /// `terminal_pty_operations_total{operation}`.
    PtyOp {
        Open => "open",
        Resize => "resize",
        Close => "close",
        Read => "read",
        Write => "write",
    }
}

label_enum! {
    /// `game_sessions_ended_total{reason}`.
    EndReason {
        /// The game exited by itself with status 0 (the player quit or saved).
        Normal => "normal",
        /// The player's connection went away; the game was sent SIGHUP (and saved).
        Hangup => "hangup",
        /// The server killed it: idle limit, shutdown past the drain bound, admin.
        Killed => "killed",
        /// It died on a signal it did not ask for, or exited non-zero.
        Crashed => "crashed",
    }
}

label_enum! {
    /// `game_saves_total{operation}`.
    SaveOp {
        /// A save file was written (game exit or hang-up save).
        Save => "save",
        /// A game started from an existing save file.
        Restore => "restore",
        /// The player's save was copied to the server's backups before a start
        /// (`crate::game::saves`); `status="failure"` when it could not be.
        Backup => "backup",
    }
}

label_enum! {
    /// `connections_rejected_total{reason}`: why a connection was refused before it was
    /// admitted.
    RejectReason {
        /// `limits.max_connections` reached.
        Full => "server_full",
        /// Not on `limits.allow`, or on `limits.deny`.
        Denied => "denied",
        /// The source has `per_source_max_connections` open.
        PerSource => "per_source",
        /// The source has `per_source_max_unauthenticated` not yet logged in.
        PerSourceUnauthenticated => "per_source_unauthenticated",
        /// The source is serving a penalty.
        Penalized => "penalized",
        /// MaxStartups random early drop.
        Startups => "max_startups",
        /// A source that must send a PROXY protocol header sent none, or a broken one.
        ProxyHeader => "bad_proxy_header",
    }
}

label_enum! {
    /// `auth_failed_logins_total{reason}`. Never the name tried: that is user input.
    FailReason {
        /// No account of that name (lobby login; SSH treats unknown names as guests).
        UnknownUser => "unknown_user",
        WrongPassword => "wrong_password",
        /// A public key that is not on the account.
        WrongKey => "wrong_key",
        /// Right credentials, but the account is locked.
        Locked => "locked",
        /// The account store could not answer.
        StoreError => "store_error",
        /// Refused unchecked: a failure backoff is in force for the account or the address.
        Throttled => "throttled",
        /// Refused unchecked: the password-hashing queue was full.
        Busy => "busy",
        /// Refused unchecked: longer than any password we accept.
        TooLong => "too_long",
    }
}

label_enum! {
    /// `auth_database_operations_total{operation}`: LMDB operations of the account store.
    DbOp {
        Get => "get",
        Create => "create",
        Update => "update",
        Delete => "delete",
        List => "list",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_value_at_its_own_index() {
        for (i, v) in PtyOp::ALL.iter().enumerate() {
            assert_eq!(v.index(), i);
        }
        for (i, v) in FailReason::ALL.iter().enumerate() {
            assert_eq!(v.index(), i);
        }
        assert_eq!(EndReason::COUNT, 4);
        assert_eq!(EndReason::Crashed.as_str(), "crashed");
    }

    #[test]
    fn outcome_follows_the_boolean() {
        assert_eq!(Outcome::from_ok(true), Outcome::Success);
        assert_eq!(Outcome::from_ok(false).as_str(), "failure");
    }
}
