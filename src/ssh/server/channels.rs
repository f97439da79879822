//! The connection protocol, server side (RFC 4254): `session` channels with flow control in
//! both directions, their requests (pty-req, shell, exec, env, window-change, signal), EOF and
//! CLOSE, exit-status; global requests and every kind of forwarding are refused.
//!
//! Windows use saturating arithmetic: a WINDOW_ADJUST of u32::MAX on top of a window cannot
//! wrap it. Input is flow-controlled by withholding WINDOW_ADJUST until the application says
//! it consumed the data, never by buffering here.

use super::{Error, Event, PacketCtx, RawEvent, ServerConnection, TermSize};
use crate::ssh::msg::{self, ChannelRequest, ChannelRequestKind, MsgType, OpenFailureReason};
use crate::ssh::wire;

/// Our local number for a channel (the "recipient channel" the client uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId(pub u32);

/// Largest data we put in one CHANNEL_DATA, whatever the peer allows.
const MAX_SEND_CHUNK: u32 = 32 * 1024;

/// Longest TERM, LANG or LC_* value we accept.
const MAX_TERMINAL_VALUE_LEN: usize = 64;
/// Env requests a channel may have accepted: TERM, LANG and a dozen LC_* are real; more is
/// a client growing our memory one new name at a time.
const MAX_ENV_PER_CHANNEL: u8 = 16;

struct Channel {
    /// The client's number for this channel (what we put in messages to it).
    peer_id: u32,
    /// Bytes we may still send before the client adjusts its window.
    send_window: u32,
    /// Largest data packet the client accepts.
    peer_max_packet: u32,
    /// Bytes the client may still send us.
    recv_window: u32,
    /// Bytes the application consumed that we have not yet returned via WINDOW_ADJUST.
    consumed: u32,
    /// shell or exec already started (only one per channel).
    started: bool,
    /// Env requests accepted so far (capped at `MAX_ENV_PER_CHANNEL`).
    env_accepted: u8,
    /// We sent EOF (no more data from us).
    eof_sent: bool,
    /// We sent CLOSE.
    close_sent: bool,
}

pub(super) struct Channels {
    /// Slots indexed by ChannelId; `None` is free.
    slots: Vec<Option<Channel>>,
    /// Maximum number of simultaneously open channels.
    max: usize,
}

impl Channels {
    pub(super) fn new(max: usize) -> Self {
        Channels {
            slots: Vec::new(),
            max,
        }
    }

    fn get_mut(&mut self, id: u32) -> Result<&mut Channel, Error> {
        self.slots
            .get_mut(id as usize)
            .and_then(Option::as_mut)
            .ok_or(Error::Protocol("message for a channel that is not open"))
    }

    /// An open channel by our id, for the application-facing calls.
    fn slot_mut(&mut self, id: ChannelId) -> Option<&mut Channel> {
        self.slots.get_mut(id.0 as usize).and_then(Option::as_mut)
    }

    fn get(&self, id: ChannelId) -> Option<&Channel> {
        self.slots.get(id.0 as usize).and_then(Option::as_ref)
    }

    fn open_count(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    fn allocate(&mut self, ch: Channel) -> Option<ChannelId> {
        if self.open_count() >= self.max {
            return None;
        }
        let idx = match self.slots.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        let slot = self.slots.get_mut(idx)?;
        *slot = Some(ch);
        u32::try_from(idx).ok().map(ChannelId)
    }

    fn free(&mut self, id: ChannelId) {
        if let Some(slot) = self.slots.get_mut(id.0 as usize) {
            *slot = None;
        }
    }
}

impl ServerConnection {
    /// Send up to `data.len()` bytes on `channel`; returns how many fit in the client's window
    /// (0 while a key exchange holds output, or when the window is shut).
    pub fn send_data(&mut self, channel: ChannelId, data: &[u8]) -> usize {
        if self.closed || self.kex.output_held() {
            return 0;
        }
        let mut sent = 0usize;
        while sent < data.len() {
            let Some(ch) = self.channels.slot_mut(channel) else {
                break;
            };
            if ch.eof_sent || ch.close_sent {
                break;
            }
            let room = ch.send_window.min(ch.peer_max_packet).min(MAX_SEND_CHUNK) as usize;
            let n = room.min(data.len() - sent);
            if n == 0 {
                break;
            }
            ch.send_window -= n as u32;
            let peer = ch.peer_id;
            let chunk = data.get(sent..sent + n).unwrap_or_default();
            self.encoder.encode(&mut self.outbuf, |o| {
                msg::encode_channel_data_header(o, peer, n as u32);
                o.extend_from_slice(chunk);
            });
            sent += n;
        }
        if sent > 0 {
            self.maybe_rekey();
        }
        sent
    }

    /// Bytes we may send on `channel` right now.
    pub fn send_window(&self, channel: ChannelId) -> usize {
        if self.kex.output_held() {
            return 0;
        }
        self.channels
            .get(channel)
            .filter(|c| !c.eof_sent && !c.close_sent)
            .map_or(0, |c| c.send_window as usize)
    }

    /// The application has dealt with `n` bytes of input from `channel`; return them to the
    /// client's window once half the window is used up (fewer, larger adjusts).
    pub fn channel_consumed(&mut self, channel: ChannelId, n: usize) {
        let half = self.settings.channel_window / 2;
        let Some(ch) = self.channels.slot_mut(channel) else {
            return;
        };
        ch.consumed = ch
            .consumed
            .saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
        if ch.consumed >= half && !ch.close_sent {
            let adjust = ch.consumed;
            ch.consumed = 0;
            ch.recv_window = ch.recv_window.saturating_add(adjust);
            let peer = ch.peer_id;
            self.send(|o| msg::encode_window_adjust(o, peer, adjust));
        }
    }

    /// Send exit-status (RFC 4254 §6.10).
    pub fn send_exit_status(&mut self, channel: ChannelId, status: u32) {
        let Some(ch) = self.channels.get(channel).filter(|c| !c.close_sent) else {
            return;
        };
        let peer = ch.peer_id;
        self.send(|o| {
            msg::encode_channel_request_header(o, peer, "exit-status", false);
            wire::put_u32(o, status);
        });
    }

    /// No more data from us on `channel`.
    pub fn send_eof(&mut self, channel: ChannelId) {
        let Some(ch) = self
            .channels
            .slot_mut(channel)
            .filter(|c| !c.eof_sent && !c.close_sent)
        else {
            return;
        };
        ch.eof_sent = true;
        let peer = ch.peer_id;
        self.send(|o| msg::encode_channel_only(o, MsgType::ChannelEof, peer));
    }

    /// Close `channel`; it is freed when the client's CLOSE arrives.
    pub fn close_channel(&mut self, channel: ChannelId) {
        let Some(ch) = self.channels.slot_mut(channel).filter(|c| !c.close_sent) else {
            return;
        };
        ch.close_sent = true;
        let peer = ch.peer_id;
        self.send(|o| msg::encode_channel_only(o, MsgType::ChannelClose, peer));
    }

    /// Messages 80–127 once authenticated.
    pub(super) fn handle_connection(
        &mut self,
        n: u8,
        payload: &[u8],
        ctx: &PacketCtx,
    ) -> Result<Option<RawEvent>, Error> {
        match MsgType::from_u8(n) {
            Some(MsgType::GlobalRequest) => {
                let req = msg::decode_global_request(payload)?;
                // keepalive@openssh.com only needs an answer; forwarding is refused.
                if req.want_reply {
                    self.send(msg::encode_request_failure);
                }
                Ok(None)
            }
            Some(MsgType::ChannelOpen) => self.on_channel_open(payload),
            Some(MsgType::ChannelRequest) => self.on_channel_request(payload, ctx),
            Some(MsgType::ChannelData) => {
                let (id, data) = msg::decode_channel_data(payload)?;
                let channel = self.take_input(id, data.len())?;
                Ok(Some(RawEvent::Data {
                    channel,
                    data: ctx.range(data),
                }))
            }
            Some(MsgType::ChannelExtendedData) => {
                // Clients have no business sending stderr; account for it and drop it.
                let (id, _code, data) = msg::decode_channel_extended_data(payload)?;
                let channel = self.take_input(id, data.len())?;
                self.channel_consumed(channel, data.len());
                Ok(None)
            }
            Some(MsgType::ChannelWindowAdjust) => {
                let (id, add) = msg::decode_window_adjust(payload)?;
                let ch = self.channels.get_mut(id)?;
                ch.send_window = ch.send_window.saturating_add(add);
                Ok(None)
            }
            Some(MsgType::ChannelEof) => {
                let id = msg::decode_channel_only(payload)?;
                self.channels.get_mut(id)?;
                Ok(Some(RawEvent::Owned(Event::Eof {
                    channel: ChannelId(id),
                })))
            }
            Some(MsgType::ChannelClose) => {
                let id = msg::decode_channel_only(payload)?;
                let ch = self.channels.get_mut(id)?;
                let peer = ch.peer_id;
                if !ch.close_sent {
                    ch.close_sent = true;
                    self.send(|o| msg::encode_channel_only(o, MsgType::ChannelClose, peer));
                }
                self.channels.free(ChannelId(id));
                Ok(Some(RawEvent::Owned(Event::ChannelClosed {
                    channel: ChannelId(id),
                })))
            }
            Some(MsgType::ChannelSuccess) | Some(MsgType::ChannelFailure) => {
                // Replies to requests we never ask a reply for; tolerate and ignore.
                let id = msg::decode_channel_only(payload)?;
                self.channels.get_mut(id)?;
                Ok(None)
            }
            Some(MsgType::RequestSuccess) | Some(MsgType::RequestFailure) => Ok(None),
            _ => self.unimplemented(ctx.seq).map(|()| None),
        }
    }

    /// Account for `len` bytes of input on channel `id` against its window and max packet.
    fn take_input(&mut self, id: u32, len: usize) -> Result<ChannelId, Error> {
        let max_packet = self.settings.channel_max_packet as usize;
        let ch = self.channels.get_mut(id)?;
        let len32 = u32::try_from(len).map_err(|_| Error::Protocol("data too long"))?;
        if len > max_packet {
            return Err(Error::Protocol(
                "channel data larger than the maximum packet",
            ));
        }
        if len32 > ch.recv_window {
            return Err(Error::Protocol("channel data beyond the window"));
        }
        ch.recv_window -= len32;
        Ok(ChannelId(id))
    }

    fn on_channel_open(&mut self, payload: &[u8]) -> Result<Option<RawEvent>, Error> {
        let open = msg::decode_channel_open(payload)?;
        if open.channel_type != b"session" {
            let reason = if matches!(
                open.channel_type,
                b"direct-tcpip" | b"forwarded-tcpip" | b"x11" | b"auth-agent@openssh.com"
            ) {
                OpenFailureReason::AdministrativelyProhibited
            } else {
                OpenFailureReason::UnknownChannelType
            };
            self.send(|o| {
                msg::encode_channel_open_failure(
                    o,
                    open.sender_channel,
                    reason,
                    "only session channels are allowed",
                )
            });
            return Ok(None);
        }
        let ch = Channel {
            peer_id: open.sender_channel,
            send_window: open.initial_window,
            peer_max_packet: open.max_packet,
            recv_window: self.settings.channel_window,
            consumed: 0,
            started: false,
            env_accepted: 0,
            eof_sent: false,
            close_sent: false,
        };
        let Some(id) = self.channels.allocate(ch) else {
            self.send(|o| {
                msg::encode_channel_open_failure(
                    o,
                    open.sender_channel,
                    OpenFailureReason::ResourceShortage,
                    "too many channels",
                )
            });
            return Ok(None);
        };
        let (window, max_packet) = (
            self.settings.channel_window,
            self.settings.channel_max_packet,
        );
        self.send(|o| {
            msg::encode_channel_open_confirmation(o, open.sender_channel, id.0, window, max_packet)
        });
        Ok(Some(RawEvent::Owned(Event::ChannelOpen { channel: id })))
    }

    fn on_channel_request(
        &mut self,
        payload: &[u8],
        ctx: &PacketCtx,
    ) -> Result<Option<RawEvent>, Error> {
        let req = ChannelRequest::decode(payload)?;
        let channel = ChannelId(req.recipient);
        let ch = self.channels.get_mut(req.recipient)?;
        let peer = ch.peer_id;
        let (ok, event) = match req.request {
            ChannelRequestKind::PtyReq {
                term,
                cols,
                rows,
                px_width,
                px_height,
                ..
            } => {
                let valid = terminal_value_ok(term);
                let size = term_size(cols, rows, px_width, px_height);
                if valid {
                    (
                        true,
                        Some(RawEvent::PtyRequest {
                            channel,
                            term: ctx.range(term),
                            size,
                        }),
                    )
                } else {
                    (false, None)
                }
            }
            ChannelRequestKind::Shell | ChannelRequestKind::Exec { .. } if ch.started => {
                (false, None)
            }
            ChannelRequestKind::Shell => {
                ch.started = true;
                (true, Some(RawEvent::Owned(Event::Shell { channel })))
            }
            ChannelRequestKind::Exec { command } => {
                ch.started = true;
                (
                    true,
                    Some(RawEvent::Exec {
                        channel,
                        command: ctx.range(command),
                    }),
                )
            }
            ChannelRequestKind::Env { name, value } => {
                if env_allowed(name)
                    && terminal_value_ok(value)
                    && ch.env_accepted < MAX_ENV_PER_CHANNEL
                {
                    ch.env_accepted += 1;
                    (
                        true,
                        Some(RawEvent::Env {
                            channel,
                            name: ctx.range(name),
                            value: ctx.range(value),
                        }),
                    )
                } else {
                    (false, None)
                }
            }
            ChannelRequestKind::WindowChange {
                cols,
                rows,
                px_width,
                px_height,
            } => (
                true,
                Some(RawEvent::Owned(Event::WindowChange {
                    channel,
                    size: term_size(cols, rows, px_width, px_height),
                })),
            ),
            ChannelRequestKind::Signal { name } => {
                if name.len() <= 16 && name.iter().all(u8::is_ascii_alphanumeric) {
                    (
                        true,
                        Some(RawEvent::Signal {
                            channel,
                            name: ctx.range(name),
                        }),
                    )
                } else {
                    (false, None)
                }
            }
            ChannelRequestKind::ExitStatus { .. } | ChannelRequestKind::Other { .. } => {
                (false, None)
            }
        };
        if req.want_reply {
            let t = if ok {
                MsgType::ChannelSuccess
            } else {
                MsgType::ChannelFailure
            };
            self.send(|o| msg::encode_channel_only(o, t, peer));
        }
        Ok(event)
    }
}

/// The one rule for TERM, LANG and LC_* values, from pty-req or env alike: short printable
/// ASCII (terminal and locale names are), so nothing odd reaches a game's environment, a log
/// line or a screen.
fn terminal_value_ok(value: &[u8]) -> bool {
    value.len() <= MAX_TERMINAL_VALUE_LEN && value.iter().all(u8::is_ascii_graphic)
}

/// TERM, LANG and LC_* only: the game's environment is ours to set.
fn env_allowed(name: &[u8]) -> bool {
    name == b"TERM"
        || name == b"LANG"
        || (name.starts_with(b"LC_")
            && name.len() <= 32
            && name.iter().all(|b| b.is_ascii_uppercase() || *b == b'_'))
}

/// The largest terminal a client may claim. Every cell of a game's screen model exists up
/// front (tens of bytes each): 65535×65535 would be gigabytes on the server for one
/// `pty-req`. No real terminal is near these.
pub const MAX_COLS: u32 = 1000;
pub const MAX_ROWS: u32 = 500;

/// Clamp the client's u32 sizes into what a terminal can be.
fn term_size(cols: u32, rows: u32, px_width: u32, px_height: u32) -> TermSize {
    let clamp = |v: u32| u16::try_from(v).unwrap_or(u16::MAX);
    TermSize {
        cols: clamp(cols.min(MAX_COLS)),
        rows: clamp(rows.min(MAX_ROWS)),
        px_width: clamp(px_width),
        px_height: clamp(px_height),
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;

    #[test]
    fn a_claimed_terminal_size_is_capped_so_no_client_can_make_the_screen_model_huge() {
        let s = term_size(u32::MAX, 65_535, 70_000, 1);
        assert_eq!((u32::from(s.cols), u32::from(s.rows)), (MAX_COLS, MAX_ROWS));
        assert_eq!((s.px_width, s.px_height), (u16::MAX, 1));
        let s = term_size(80, 24, 0, 0);
        assert_eq!((s.cols, s.rows), (80, 24));
    }
}
