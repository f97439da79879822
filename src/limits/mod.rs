//! Limits that keep one client, or one address, from taking the server for itself: the
//! grouping of addresses into sources, CIDR allow/deny lists, per-source connection counts and
//! penalties, and OpenSSH's `MaxStartups` random early drop.
//!
//! Everything here is plain logic with the time passed in; the reactor asks and reports.

pub mod cidr;
pub mod source;
pub mod startups;
pub mod throttle;

pub use cidr::{Cidr, CidrList};
pub use source::{SourceGrouping, SourceKey, SourceTable};
pub use startups::MaxStartups;
