//! The transport layer below key exchange: identification lines (RFC 4253 §4.2) and packet
//! framing with encryption (RFC 4253 §6).

pub mod ident;
pub mod packet;
