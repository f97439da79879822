//! The lobby state machine under arbitrary keystrokes, resizes, idle ticks and answers: it
//! never panics, never draws an unbounded screen, and keeps at most one request outstanding
//! besides a final Quit.
//!
//! Input: byte 0 picks guest or logged-in (and admin) and whether a guest's client offered a
//! key, bytes 1–2 the terminal size; the rest is a stream in which 0xF0–0xFD are events
//! (resize, idle tick, answers to the pending request, context change, unasked-for answers)
//! and every other byte is typed.

#![no_main]

use dungeongate::admin::{SessionId, SessionInfo};
use dungeongate::lobby::{
    GameEntry, KeyEntry, Lobby, LobbyAction, LobbyContext, OptionsFile, UserInfo,
};
use dungeongate::watch::{GameList, GameRef, Listing};
use libfuzzer_sys::fuzz_target;

/// One screen is at most a few KiB even at 500 columns; a redraw past this is a bug.
const MAX_OUTPUT_PER_STEP: usize = 1 << 20;

fn context(players: usize) -> LobbyContext {
    LobbyContext {
        server_id: "fuzz".into(),
        banner: "## $SERVERID $USERNAME $DATE $PLAYERS $WATCHERS\n\x1b[1mbold\x1b[0m\n".into(),
        games: vec![
            GameEntry {
                id: "nethack".into(),
                name: "NetHack".into(),
                key: 'p',
                available: true,
                options: true,
            },
            GameEntry {
                id: "gone".into(),
                name: "Unavailable".into(),
                key: 'g',
                available: false,
                options: players % 2 == 0,
            },
        ],
        players,
        watchers: 0,
        date: "2026-11-29".into(),
    }
}

fuzz_target!(|data: &[u8]| {
    let (head, stream) = data.split_at(data.len().min(3));
    let mode = head.first().copied().unwrap_or(0);
    let user = match mode % 3 {
        0 => None,
        n => Some(UserInfo {
            name: "alice".into(),
            admin: n == 2,
            running: Vec::new(),
        }),
    };
    let cols = u16::from(head.get(1).copied().unwrap_or(80)) * 2;
    let rows = u16::from(head.get(2).copied().unwrap_or(24));
    let mut lobby = Lobby::new(context(0), user, cols, rows);
    if mode & 4 != 0 {
        lobby.set_offered_key(Some("SHA256:fuzz\x1b[2J".into()));
    }
    let mut out = Vec::new();
    let mut pending: Option<LobbyAction> = None;
    let mut typed = Vec::new();
    for (i, &b) in stream.iter().enumerate() {
        match b {
            0xF0 => lobby.handle_resize((i % 400) as u16, (i % 90) as u16),
            0xF1 => lobby.handle_input_idle(),
            0xF2 => answer(&mut lobby, pending.take(), true),
            0xF3 => answer(&mut lobby, pending.take(), false),
            0xF4 => lobby.handle_context(context(i)),
            // Unasked-for answers (nothing pending): the lobby must shrug them off.
            0xF5 if pending.is_none() => lobby.handle_game_ended("ended".into()),
            0xF6 if pending.is_none() => lobby.handle_play_refused("refused".into()),
            0xF5 | 0xF6 => {}
            0xF7 => {
                lobby.handle_input(&typed);
                typed.clear();
            }
            0xF8 => lobby.handle_game_list(game_list(i), i as u64 * 500),
            0xF9 => lobby.handle_watch_ended("gone"),
            0xFA if pending.is_none() => lobby.handle_keys_result(Ok(keys(i))),
            0xFA => {}
            // The player's running games (some of them bob's, whom every login is).
            0xFC => lobby.handle_my_games(&game_list(i)),
            // A start answered with "open on another connection": the take-over question.
            0xFB if matches!(pending, Some(LobbyAction::Play { .. })) => {
                pending = None;
                lobby.handle_take_over_offer(&game_list(i + 1)[0]);
            }
            0xFB => {}
            // An admin list nobody asked for (or a second one): shrugged off.
            0xFD if pending.is_none() => lobby.handle_admin_sessions(Ok(sessions(i))),
            0xFD => {}
            _ => {
                typed.push(b);
                if typed.len() >= 7 {
                    lobby.handle_input(&typed);
                    typed.clear();
                }
            }
        }
        out.clear();
        lobby.poll_output(&mut out);
        assert!(out.len() < MAX_OUTPUT_PER_STEP, "{} bytes drawn", out.len());
        while let Some(a) = lobby.poll_action() {
            if matches!(a, LobbyAction::Quit) {
                assert!(lobby.is_finished());
                continue;
            }
            // Watching asks for no answer through the lobby: the list comes when it comes
            // (0xF8 sends one), a watch goes on until `q` or its end (0xF9, also unasked).
            if matches!(
                a,
                LobbyAction::ListGames
                    | LobbyAction::Watch { .. }
                    | LobbyAction::StopWatching
                    | LobbyAction::ListMyGames
            ) {
                continue;
            }
            assert!(pending.is_none(), "two requests outstanding");
            pending = Some(a);
        }
    }
});

/// Answer the outstanding request, well or badly.
fn answer(lobby: &mut Lobby, action: Option<LobbyAction>, ok: bool) {
    let user = || UserInfo {
        name: "bob".into(),
        admin: false,
        running: Vec::new(),
    };
    match action {
        Some(LobbyAction::Login { .. }) => {
            lobby.handle_login_result(if ok { Ok(user()) } else { Err("no".into()) })
        }
        Some(LobbyAction::Register { .. }) => {
            lobby.handle_register_result(if ok { Ok(user()) } else { Err("taken".into()) })
        }
        Some(LobbyAction::ChangePassword { .. }) | Some(LobbyAction::ChangeEmail { .. }) => {
            lobby.handle_change_result(if ok { Ok(()) } else { Err("busy".into()) })
        }
        Some(LobbyAction::Play { .. } | LobbyAction::TakeOver { .. }) => {
            if ok {
                lobby.handle_game_ended("bye".into())
            } else {
                lobby.handle_play_refused("one copy at a time".into())
            }
        }
        Some(
            LobbyAction::ListKeys
            | LobbyAction::AddKey { .. }
            | LobbyAction::RemoveKey { .. }
            | LobbyAction::BindOfferedKey,
        ) => lobby.handle_keys_result(if ok { Ok(keys(7)) } else { Err("busy".into()) }),
        Some(LobbyAction::ReadOptions { .. }) => lobby.handle_options_read(if ok {
            Ok(options_file())
        } else {
            Err("no such file".into())
        }),
        Some(LobbyAction::WriteOptions { .. }) => {
            lobby.handle_options_saved(if ok { Ok(()) } else { Err("disk full".into()) })
        }
        Some(LobbyAction::AdminSessions) => lobby.handle_admin_sessions(if ok {
            Ok(sessions(45))
        } else {
            Err("busy\x1b[2J".into())
        }),
        Some(
            LobbyAction::AdminKick { .. }
            | LobbyAction::AdminBroadcast { .. }
            | LobbyAction::AdminDrain { .. }
            | LobbyAction::AdminLock { .. },
        ) => lobby.handle_admin_result(if ok {
            Ok(())
        } else {
            Err("no such account\x1b]0;t\x07".into())
        }),
        Some(
            LobbyAction::Quit
            | LobbyAction::ListGames
            | LobbyAction::Watch { .. }
            | LobbyAction::StopWatching
            | LobbyAction::ListMyGames,
        )
        | None => {}
    }
}

/// An options file with hostile bytes: escapes, C1 controls, bidi overrides, wide and
/// combining characters, a long line.
fn options_file() -> OptionsFile {
    OptionsFile {
        text: format!(
            "OPTIONS=color\n\x1b]52;c;eA==\x07\u{9b}2J\u{202e}x\u{4e00}e\u{301}\t\r\n{}\n",
            "y".repeat(3000)
        ),
        template: Some("OPTIONS=default\n".into()),
        exists: true,
    }
}

/// Up to 20 keys (more than the lobby's limit: the CLI has none), some with hostile text.
fn keys(i: usize) -> Vec<KeyEntry> {
    (0..i % 21)
        .map(|n| KeyEntry {
            key_type: if n % 3 == 0 {
                "ssh-ed25519\x1b[5m"
            } else {
                "ssh-rsa"
            }
            .into(),
            fingerprint: format!("SHA256:{n:0>43}"),
            comment: "\x1b]0;title\x07\u{9b}2J\u{202e}wide\u{4e00}".repeat(n % 4),
            added_unix: (n as u64) * 86_400 * 400,
        })
        .collect()
}

/// A list of up to 40 games (enough for several pages), some with hostile names.
fn game_list(i: usize) -> GameList {
    (0..1 + (i * 7) % 41)
        .map(|n| Listing {
            game: GameRef {
                core: (n % 3) as u16,
                slot: n as u32,
                generation: 1,
            },
            player: match n % 5 {
                0 => format!("p{n}\x1b]52;c;eA==\x07"),
                1 => "bob".into(),
                _ => format!("player{n}"),
            },
            game_id: if n % 2 == 0 {
                "nethack".into()
            } else {
                format!("g{n}\x1b[2J")
            },
            game_name: if n % 3 == 0 {
                "Net\x1b]0;t\x07Hack\u{202e}".into()
            } else {
                "NetHack".into()
            },
            detached: n % 2 == 1,
            cols: 80 + (n % 3) as u16 * 20,
            rows: 24,
            started_unix: 1_796_000_000 + n as u64,
            last_output_ms: (n as u64) * 1000,
            watchers: n as u32 % 4,
        })
        .collect()
}

/// Up to 45 connections (several pages), some with hostile names and game ids.
fn sessions(i: usize) -> Vec<SessionInfo> {
    (0..i % 46)
        .map(|n| SessionInfo {
            id: SessionId {
                core: (n % 3) as u16,
                slot: n as u32 * 1000,
                generation: u32::MAX - n as u32,
            },
            user: match n % 4 {
                0 => None,
                1 => Some(format!("u{n}\x1b[2J\u{9b}0m\u{202e}")),
                _ => Some(format!("player{n}")),
            },
            source: if n % 2 == 0 {
                [192, 0, 2, n as u8].into()
            } else {
                [0x2001, 0xdb8, 0, 0, 0, 0, 0xffff, n as u16].into()
            },
            game: (n % 3 != 0).then(|| format!("g{n}\x1b]52;c;eA==\x07")),
            watching: n % 5 == 0,
            idle_ms: (n as u64) * 61_000,
            connected_ms: u64::MAX - n as u64,
        })
        .collect()
}
