//! The banner drawn at the top of every lobby screen: operator text with dgamelaunch's
//! variables `$USERNAME`, `$SERVERID`, `$DATE`, `$PLAYERS`, `$WATCHERS`, and colour.
//!
//! Colour is written in the banner text as SGR sequences (`ESC [ … m`, e.g. `"\e[1;31m"` in a
//! YAML double-quoted string); every other control character or sequence is dropped so an
//! operator typo cannot move the cursor or clear the screen. Lines default to cyan. Values
//! substituted for variables are sanitised and inserted once, never re-scanned.

use super::screen::{sanitize, Line, Style};

/// The values substituted into the banner.
pub(crate) struct BannerValues<'a> {
    /// `$USERNAME`: the logged-in name, or "guest".
    pub(crate) username: &'a str,
    /// `$SERVERID`: the operator's name for this server.
    pub(crate) server_id: &'a str,
    /// `$DATE`: formatted by the caller (the lobby has no clock).
    pub(crate) date: &'a str,
    /// `$PLAYERS`: games being played now.
    pub(crate) players: usize,
    /// `$WATCHERS`: people watching now.
    pub(crate) watchers: usize,
}

/// Replaces the banner variables in `template`; unknown `$WORDS` stay as typed.
pub(crate) fn substitute(template: &str, values: &BannerValues<'_>) -> String {
    let players = values.players.to_string();
    let watchers = values.watchers.to_string();
    let vars: [(&str, String); 5] = [
        ("USERNAME", sanitize(values.username)),
        ("SERVERID", sanitize(values.server_id)),
        ("DATE", sanitize(values.date)),
        ("PLAYERS", players),
        ("WATCHERS", watchers),
    ];
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some((before, after)) = rest.split_once('$') {
        out.push_str(before);
        let found = vars
            .iter()
            .find_map(|(name, value)| after.strip_prefix(name).map(|tail| (value, tail)));
        match found {
            Some((value, tail)) => {
                out.push_str(value);
                rest = tail;
            }
            None => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Turns substituted banner text into screen lines `width` columns wide, keeping only SGR.
pub(crate) fn lines(text: &str, width: usize) -> Vec<Line> {
    text.lines().map(|l| line(l, width)).collect()
}

/// One banner line: text in the banner colour, operator SGR passed through, the rest dropped.
fn line(text: &str, width: usize) -> Line {
    let mut out = Line::new(width);
    out.set_style(Style::Banner);
    let mut chars = text.chars().peekable();
    let mut run = String::new();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                out.push_text(&run);
                run.clear();
                if chars.peek() != Some(&'[') {
                    continue;
                }
                chars.next();
                let mut params = String::new();
                while let Some(&p) = chars.peek() {
                    if !(p.is_ascii_digit() || p == ';') {
                        break;
                    }
                    params.push(p);
                    chars.next();
                }
                if chars.peek() == Some(&'m') && params.len() <= MAX_SGR_PARAMS {
                    chars.next();
                    out.push_sgr(&format!("\x1b[{params}m"));
                    continue;
                }
                // Some other control sequence: skip the rest of it up to its final byte.
                while let Some(&p) = chars.peek() {
                    chars.next();
                    if ('\x40'..='\x7e').contains(&p) || !('\x20'..='\x3f').contains(&p) {
                        break;
                    }
                }
            }
            '\t' => run.push(' '),
            c if c.is_control() => {}
            c => run.push(c),
        }
    }
    out.push_text(&run);
    out
}

/// Longest SGR parameter string passed through.
const MAX_SGR_PARAMS: usize = 32;

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> BannerValues<'static> {
        BannerValues {
            username: "alice",
            server_id: "nao",
            date: "2025-01-02",
            players: 12,
            watchers: 3,
        }
    }

    #[test]
    fn every_variable_is_substituted() {
        let s = substitute(
            "$USERNAME@$SERVERID on $DATE: $PLAYERS playing, $WATCHERS watching",
            &values(),
        );
        assert_eq!(s, "alice@nao on 2025-01-02: 12 playing, 3 watching");
    }

    #[test]
    fn unknown_variables_and_lone_dollars_stay() {
        assert_eq!(
            substitute("$HOME costs $5 $", &values()),
            "$HOME costs $5 $"
        );
    }

    #[test]
    fn substituted_values_are_not_rescanned_or_allowed_to_inject_escapes() {
        let v = BannerValues {
            server_id: "$USERNAME\x1b[2J",
            ..values()
        };
        assert_eq!(substitute("[$SERVERID]", &v), "[$USERNAME[2J]");
    }

    #[test]
    fn banner_keeps_sgr_and_drops_other_sequences() {
        let l = line("\x1b[1;31mred\x1b[2J\x1b[10;10Hx\x07y\x1b(Bz", 80);
        let s = l.raw();
        assert_eq!(l.width(), "redxy(Bz".len());
        assert!(s.contains("\x1b[1;31mred"));
        assert!(!s.contains("[2J"));
        assert!(!s.contains("10;10H"));
    }
}
