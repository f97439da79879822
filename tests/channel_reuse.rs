//! A client that pipelines channel requests so that a channel id is reused while a game is
//! still starting on it must not leave games behind: every game it started ends when it goes.
//! (Channel ids are reused lowest-first; an earlier build let the first game's late start land
//! on the second channel and dropped it without a hangup, running forever.)

mod common;

use common::{RawClient, Server, ALICE, ALICE_PW, IO_TIMEOUT};
use dungeongate::ssh::client::ClientEvent;
use dungeongate::ssh::msg::{self, MsgType};
use dungeongate::ssh::wire;

/// CHANNEL_OPEN, pty-req and exec `game` on what the server will call channel 0, without
/// waiting for any reply.
fn open_and_exec(c: &mut RawClient, sender: u32, game: &str) {
    let mut p = Vec::new();
    msg::encode_channel_open_session(&mut p, sender, 1 << 20, 32 * 1024);
    c.send_raw(&p);
    let mut p = Vec::new();
    msg::encode_channel_request_header(&mut p, 0, "pty-req", false);
    wire::put_string(&mut p, b"xterm");
    for v in [80, 24, 0, 0] {
        wire::put_u32(&mut p, v);
    }
    wire::put_string(&mut p, &[0]);
    c.send_raw(&p);
    let mut p = Vec::new();
    msg::encode_channel_request_header(&mut p, 0, "exec", false);
    wire::put_string(&mut p, game.as_bytes());
    c.send_raw(&p);
}

#[test]
fn pipelined_exec_close_open_exec_on_one_channel_id_leaves_no_game_running() {
    let mut server = Server::start(&[], |_| {});
    for round in 0..5 {
        let mut c = RawClient::password_login(&server, ALICE, ALICE_PW);
        // Twenty cycles on one connection, all in one burst.
        for i in 0..20 {
            open_and_exec(&mut c, 2 * i, "cat");
            let mut p = Vec::new();
            msg::encode_channel_only(&mut p, MsgType::ChannelClose, 0);
            c.send_raw(&p);
        }
        open_and_exec(&mut c, 99, "cat");
        // Wait until the server has answered everything (its closes and the last open).
        let closes = |cl: &dungeongate::ssh::client::Client| {
            cl.events
                .iter()
                .filter(|e| **e == ClientEvent::Closed)
                .count()
                >= 20
        };
        assert!(
            c.pump_until(IO_TIMEOUT, closes),
            "round {round}: the server did not answer the pipelined closes: {:?}",
            c.client.events
        );
        // The last channel's game is attached to the last channel: it echoes.
        c.client.send_data(b"still-here\n");
        let echoed = |cl: &dungeongate::ssh::client::Client| {
            String::from_utf8_lossy(&cl.received)
                .matches("still-here")
                .count()
                >= 2
        };
        assert!(
            c.pump_until(IO_TIMEOUT, echoed),
            "round {round}: no echo from the last channel's game: {:?}\n{}",
            String::from_utf8_lossy(&c.client.received),
            server.log_tail()
        );
        // Once it goes, none may run.
        drop(c);
        server.assert_idle(&format!("after round {round}'s client left"));
    }
    server.stop();
}
