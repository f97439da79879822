//! Which account a game runs as: passwd lookup, the never-as-root policy, and the
//! setgroups → setgid → setuid sequence done in the child.

use std::ffi::CString;
use std::io;

use nix::unistd::{geteuid, getgid, getgrouplist, getuid, Gid, User};

use super::{PtyError, RunAs};

/// Looks `user` up in passwd (NSS) and returns its uid, gid and home.
pub fn lookup_run_as(user: &str) -> Result<RunAs, PtyError> {
    let entry = User::from_name(user)
        .map_err(PtyError::Lookup)?
        .ok_or_else(|| PtyError::UnknownUser(user.to_owned()))?;
    Ok(RunAs {
        uid: entry.uid.as_raw(),
        gid: entry.gid.as_raw(),
        name: entry.name,
        home: entry.dir,
    })
}

/// The groups (primary and supplementary, from `getgrouplist`) a game started as `run_as`
/// would be in, after the same checks a spawn makes (never uid 0 or group 0); `None` when no
/// switch happens (the server is not root). For `check-config`, which asks what a spawn would
/// do without spawning.
pub fn game_groups(run_as: Option<&RunAs>) -> Result<Option<Vec<u32>>, PtyError> {
    Ok(plan_identity(run_as)?.map(|plan| plan.groups))
}

/// Whether `fs.suid_dumpable` is 1, under which a root server must not start games.
///
/// A game's process shares the server's memory from clone until exec, and drops to the game's
/// user in between. The kernel then marks that memory non-dumpable (`fs.suid_dumpable` 0 or 2),
/// which is what stops another process of the game's user from ptracing the child, and
/// through it the server, in that window; with 1 it is marked dumpable by that user.
pub fn suid_dumpable_is_unsafe() -> bool {
    std::fs::read_to_string("/proc/sys/fs/suid_dumpable").is_ok_and(|v| v.trim() == "1")
}

/// An identity switch decided in the parent and carried out in the child.
#[derive(Debug, Clone)]
pub(super) struct IdentityPlan {
    /// Target user id.
    uid: libc::uid_t,
    /// Target primary group id.
    gid: libc::gid_t,
    /// Supplementary groups (from `getgrouplist`), computed before the spawn so the child allocates nothing.
    groups: Vec<libc::gid_t>,
}

/// Applies the policy: a root server must name a non-root account; a non-root server can only
/// "switch" to itself. Returns `None` when no switch is needed.
pub(super) fn plan_identity(run_as: Option<&RunAs>) -> Result<Option<IdentityPlan>, PtyError> {
    if let Some(r) = run_as {
        if r.uid == 0 || r.gid == 0 {
            return Err(PtyError::RunAsRoot {
                name: r.name.clone(),
            });
        }
    }
    if !geteuid().is_root() {
        return match run_as {
            Some(r) if r.uid != getuid().as_raw() || r.gid != getgid().as_raw() => {
                Err(PtyError::NotPermitted {
                    name: r.name.clone(),
                })
            }
            _ => Ok(None),
        };
    }
    let r = run_as.ok_or(PtyError::RootWithoutRunAs)?;
    let name = CString::new(r.name.as_bytes()).map_err(|_| PtyError::Nul("user name"))?;
    let groups: Vec<libc::gid_t> = getgrouplist(&name, Gid::from_raw(r.gid))
        .map_err(PtyError::Lookup)?
        .into_iter()
        .map(Gid::as_raw)
        .collect();
    if groups.contains(&0) {
        return Err(PtyError::RunAsRoot {
            name: r.name.clone(),
        });
    }
    Ok(Some(IdentityPlan {
        uid: r.uid,
        gid: r.gid,
        groups,
    }))
}

impl IdentityPlan {
    /// The uid that will own the PTY slave.
    pub(super) fn uid(&self) -> libc::uid_t {
        self.uid
    }

    /// Drops privileges for good. Runs in the spawned child, which shares the server's memory
    /// until exec: raw system calls only, since glibc's wrappers would apply the change to
    /// every thread of the server (they broadcast set*id calls to all threads they know of).
    pub(super) fn apply_in_child(&self) -> io::Result<()> {
        // SAFETY: plain syscalls on data prepared before the spawn; no allocation.
        unsafe {
            if libc::syscall(libc::SYS_setgroups, self.groups.len(), self.groups.as_ptr()) != 0
                || libc::syscall(libc::SYS_setresgid, self.gid, self.gid, self.gid) != 0
                || libc::syscall(libc::SYS_setresuid, self.uid, self.uid, self.uid) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // Belt and braces: regaining root must be impossible now.
            if libc::syscall(libc::SYS_setuid, 0) == 0 {
                return Err(io::Error::from_raw_os_error(libc::EPERM));
            }
        }
        Ok(())
    }
}
