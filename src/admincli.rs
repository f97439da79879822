//! `dungeongate admin …`: orders for the running server, through its admin socket (see
//! `reactor::admin_socket`): list sessions, kick one, broadcast a line, drain new games,
//! lock or unlock an account with a reason. Run as the server's user on its machine.

use crate::reactor::admin_socket::{ask, Answer, Order, SessionRow};
use clap::Subcommand;
use std::io::Write;
use std::path::Path;

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Every connection: id, account, source, game, idle and connected times.
    Sessions,
    /// Close a connection (by the id `sessions` shows); its games are hung up and save.
    Kick {
        /// `core.slot.generation`, as `sessions` shows it.
        session: String,
        /// Told to the player.
        #[arg(long)]
        reason: Option<String>,
    },
    /// One line to every player's terminal (shown in the lobby, never into a game).
    Broadcast { text: String },
    /// Refuse new games (`on`, maintenance) or allow them again (`off`); running games go on.
    Drain {
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// Lock an account: it cannot log in, and its sessions end now, told the reason.
    Lock {
        name: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Unlock an account.
    Unlock { name: String },
}

/// Send the order to the server whose data directory is `data_dir`; print its answer.
pub fn run(cmd: AdminCommand, data_dir: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    let order = match cmd {
        AdminCommand::Sessions => Order::Sessions,
        AdminCommand::Kick { session, reason } => Order::Kick { session, reason },
        AdminCommand::Broadcast { text } => Order::Broadcast { text },
        AdminCommand::Drain { state } => Order::Drain { on: state == "on" },
        AdminCommand::Lock { name, reason } => Order::Lock { name, reason },
        AdminCommand::Unlock { name } => Order::Unlock { name },
    };
    let answer = ask(data_dir, &order).map_err(anyhow::Error::msg)?;
    report(&order, &answer, out)
}

fn report(order: &Order, answer: &Answer, out: &mut impl Write) -> anyhow::Result<()> {
    if !answer.ok {
        anyhow::bail!(
            "{}",
            answer
                .error
                .as_deref()
                .unwrap_or("the server refused the order")
        );
    }
    match (order, &answer.sessions) {
        (Order::Sessions, Some(rows)) => print_sessions(rows, out)?,
        (Order::Kick { session, .. }, _) => writeln!(out, "asked to close {session}")?,
        (Order::Broadcast { .. }, _) => writeln!(out, "sent")?,
        (Order::Drain { on: true }, _) => writeln!(out, "new games are refused (maintenance)")?,
        (Order::Drain { on: false }, _) => writeln!(out, "new games are allowed")?,
        (Order::Lock { name, .. }, _) => writeln!(out, "locked {name}; its sessions end")?,
        (Order::Unlock { name }, _) => writeln!(out, "unlocked {name}")?,
        (Order::Sessions, None) => writeln!(out, "no list came back")?,
    }
    Ok(())
}

fn print_sessions(rows: &[SessionRow], out: &mut impl Write) -> std::io::Result<()> {
    if rows.is_empty() {
        return writeln!(out, "no connections");
    }
    writeln!(
        out,
        "{:<14} {:<16} {:<39} {:<14} {:>8} {:>10}",
        "ID", "ACCOUNT", "FROM", "GAME", "IDLE", "CONNECTED"
    )?;
    for r in rows {
        let game = match (&r.game, r.watching) {
            (_, true) => "(watching)".to_owned(),
            (Some(g), false) => g.clone(),
            (None, false) => "-".to_owned(),
        };
        // Names and game ids come from accounts and the config; printed without controls.
        let user = crate::auth::printable(r.user.as_deref().unwrap_or("-"));
        writeln!(
            out,
            "{:<14} {:<16} {:<39} {:<14} {:>8} {:>10}",
            r.id,
            user,
            r.source,
            crate::auth::printable(&game),
            duration(r.idle_s),
            duration(r.connected_s)
        )?;
    }
    writeln!(out, "{} connections", rows.len())
}

/// `1h02m`, `3m05s`, `42s`.
fn duration(s: u64) -> String {
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_list_prints_a_table_and_names_lose_their_controls() {
        let rows = vec![SessionRow {
            id: "1.4.2".into(),
            user: Some("ev\u{1b}[2Jil".into()),
            source: "192.0.2.1".into(),
            game: Some("nethack".into()),
            watching: false,
            idle_s: 65,
            connected_s: 7300,
        }];
        let mut out = Vec::new();
        print_sessions(&rows, &mut out).expect("print");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.contains("1.4.2"));
        assert!(text.contains("1m05s") && text.contains("2h01m"));
        assert!(!text.contains('\u{1b}'));
        assert!(text.ends_with("1 connections\n"));
    }

    #[test]
    fn a_refusal_is_an_error_with_the_servers_words() {
        let answer = Answer {
            ok: false,
            error: Some("There is no account named zed.".into()),
            sessions: None,
        };
        let err = report(
            &Order::Unlock { name: "zed".into() },
            &answer,
            &mut Vec::new(),
        )
        .expect_err("refused");
        assert_eq!(err.to_string(), "There is no account named zed.");
    }
}
