//! Game recordings in ttyrec format: each frame is a 12-byte header (seconds, microseconds,
//! length; little-endian `u32`s) and the bytes the player's terminal received, so ttyplay,
//! termplay, ipbt and asciinema-player replay them.
//!
//! The parts, from a running game to a file and back:
//!
//! - [`Recording`] (sans-io, on the reactor core that runs the game): frames into a bounded
//!   pending buffer, taken away in [`Batch`]es; rotation to a new file at a size cap, and a
//!   marked gap instead of unbounded memory when the disk falls behind.
//! - [`Sink`] (blocking, on a writer thread): the files themselves, made without following
//!   planted links, named as dgamelaunch names them ([`file_name`]), compressed when finished.
//! - [`Reader`] and [`reader::open`]: frames back from plain, gzip or zstd files; a file cut
//!   mid-frame yields its whole frames and then says so.
//! - [`Info`] and [`cli`]: `dungeongate ttyrec info FILE…`.
//! - [`Preamble`]: the first frame of each file (player, game, server, time, terminal size).

pub mod cli;
pub mod compress;
pub mod error;
pub mod frame;
pub mod info;
pub mod name;
pub mod preamble;
pub mod reader;
pub mod recording;
pub mod sink;

pub use compress::Compression;
pub use error::RecordError;
pub use frame::{header, Timestamp};
pub use info::Info;
pub use name::file_name;
pub use preamble::{Preamble, TermSize};
pub use reader::{Frame, ReadError, Reader};
pub use recording::{Batch, Part, Recording, Resync};
pub use sink::Sink;
