//! Resource limits for a game (setrlimit(2)): decided in the parent, applied in the child
//! before it drops privileges (so a root server may also raise a hard limit).

use std::io;

use super::Rlimits;

/// Limits to apply in the child; a fixed array so the child allocates nothing.
#[derive(Debug, Clone, Copy)]
pub(super) struct RlimitPlan {
    /// `(resource, soft, hard)`; `None` slots are left as inherited.
    entries: [Option<(libc::__rlimit_resource_t, libc::rlim_t, libc::rlim_t)>; 5],
}

impl RlimitPlan {
    /// Turns the requested limits into a plan. A non-root server cannot raise a hard limit,
    /// so its values are clamped to the current hard limit instead of failing at exec time.
    pub(super) fn new(limits: &Rlimits, privileged: bool) -> Self {
        let wanted = [
            (libc::RLIMIT_CORE, limits.core_bytes),
            (libc::RLIMIT_CPU, limits.cpu_seconds),
            (libc::RLIMIT_NPROC, limits.nproc),
            (libc::RLIMIT_AS, limits.address_space_bytes),
        ];
        let [a, b, c, d] = wanted.map(|(resource, value)| {
            let value = value?;
            let value = if privileged {
                value
            } else {
                value.min(current_hard(resource).unwrap_or(value))
            };
            Some((resource, value, value))
        });
        // The server raised its own descriptor limit for its connections; the game gets the
        // one the server was started with.
        let nofile = super::fdlimit::inherited()
            .map(|lim| (libc::RLIMIT_NOFILE, lim.rlim_cur, lim.rlim_max));
        RlimitPlan {
            entries: [a, b, c, d, nofile],
        }
    }

    /// Applies the plan. Runs in the spawned child (which shares the server's memory until
    /// exec): plain system calls only.
    pub(super) fn apply_in_child(&self) -> io::Result<()> {
        for (resource, soft, hard) in self.entries.iter().flatten() {
            set(
                *resource,
                &libc::rlimit {
                    rlim_cur: *soft,
                    rlim_max: *hard,
                },
            )?;
        }
        Ok(())
    }
}

/// The calling process's limit for `resource` (`getrlimit(2)`).
pub(super) fn current(resource: libc::__rlimit_resource_t) -> io::Result<libc::rlimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out-pointer to a stack value.
    if unsafe { libc::getrlimit(resource, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(lim)
}

/// Sets the calling process's limit for `resource` (`setrlimit(2)`, a plain system call, so
/// also usable in the spawned child).
pub(super) fn set(resource: libc::__rlimit_resource_t, lim: &libc::rlimit) -> io::Result<()> {
    // SAFETY: plain syscall with a valid pointer to a value that outlives it.
    if unsafe { libc::setrlimit(resource, lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The calling process's hard limit for `resource`, if readable.
fn current_hard(resource: libc::__rlimit_resource_t) -> Option<libc::rlim_t> {
    current(resource).ok().map(|lim| lim.rlim_max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_limits_produce_an_empty_plan() {
        let plan = RlimitPlan::new(&Rlimits::default(), true);
        assert!(plan.entries[..4].iter().all(Option::is_none));
    }

    #[test]
    fn unprivileged_plan_never_exceeds_the_current_hard_limit() {
        let limits = Rlimits {
            core_bytes: Some(u64::MAX - 1),
            ..Rlimits::default()
        };
        let plan = RlimitPlan::new(&limits, false);
        let hard = current_hard(libc::RLIMIT_CORE).unwrap_or(u64::MAX);
        assert_eq!(
            plan.entries[0],
            Some((
                libc::RLIMIT_CORE,
                hard.min(u64::MAX - 1),
                hard.min(u64::MAX - 1)
            ))
        );
    }
}
