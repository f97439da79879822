//! The metrics against the Prometheus tools that consume them: `promtool check metrics` on a
//! scrape with every family populated, `promtool check rules` on `monitoring/alerts.yml`, a
//! real `prometheus` server scraping the HTTP endpoint, and the Grafana dashboard and alert
//! rules referring only to families the server exports.
//!
//! Needs the Debian `prometheus` package (`promtool`, `prometheus`); CI installs it.

use dungeongate::metrics::collector::FAMILIES;
use dungeongate::metrics::{
    AuthMethod, DbOp, Direction, EndReason, FailReason, HttpState, PtyOp, Registry,
    RegistryOptions, SaveOp,
};
use dungeongate::ssh::kex::KexAlg;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn monitoring(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("monitoring")
        .join(file)
}

fn registry() -> Registry {
    Registry::new(RegistryOptions {
        cores: 2,
        game_ids: vec!["nethack".into(), "amulet".into()],
        connections_limit: 500,
        version: env!("CARGO_PKG_VERSION").into(),
        commit: dungeongate::metrics::BUILD_COMMIT.into(),
    })
}

/// Record at least one event of every kind, on both cores and the control core.
fn populate(r: &Registry) {
    for (i, c) in r.cores().iter().enumerate() {
        c.heartbeat();
        c.set_busy_ratio(0.1 * (i + 1) as f64);
        c.set_buffer_pool_in_use(3 + i);
        c.conn_accepted();
        c.conn_accepted();
        c.conn_rejected(dungeongate::metrics::RejectReason::Full);
        c.conn_failed();
        c.conn_closed(Duration::from_secs(42));
        c.handshake_done(KexAlg::ALL[i % KexAlg::ALL.len()], Duration::from_millis(4));
        c.kex_done(KexAlg::Curve25519Sha256);
        for m in AuthMethod::ALL {
            c.auth_attempt(*m, true);
            c.auth_attempt(*m, false);
        }
        c.bytes(Direction::In, 1000);
        c.bytes(Direction::Out, 5000);
        c.terminal_session_started();
        c.terminal_session_started();
        c.terminal_session_ended(Duration::from_secs(300), true);
        for op in PtyOp::ALL {
            c.pty_op(*op);
        }
        c.terminal_bytes(Direction::In, 10);
        c.terminal_bytes(Direction::Out, 2000);
        c.spectator_joined();
        c.spectating_session_started();
        let g = c.game_index("nethack");
        c.game_spawned(g, true);
        c.game_spawned(g, true);
        c.game_spawned(g, false);
        c.game_ended(g, EndReason::Hangup);
        c.game_save(g, SaveOp::Save, true);
        c.game_save(g, SaveOp::Restore, false);
    }
    let c = r.control();
    c.login_succeeded();
    for reason in FailReason::ALL {
        c.login_failed(*reason);
    }
    c.lockout();
    c.user_registered();
    for op in DbOp::ALL {
        c.db_op(*op, true, Duration::from_micros(40));
    }
    c.password_hash(Duration::from_millis(21));
}

/// Run a tool, failing the test with a clear message if it is not installed.
fn tool(name: &str) -> Command {
    let found = Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(found, "`{name}` not found: apt-get install -y prometheus");
    Command::new(name)
}

#[test]
fn a_scrape_with_every_family_populated_passes_promtool_check_metrics() {
    let r = registry();
    populate(&r);
    let text = r.render();
    let mut child = tool("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    child
        .stdin
        .take()
        .expect("promtool stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let out = child.wait_with_output().expect("promtool output");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics: {report}\n--- scrape ---\n{text}"
    );
    // Every family is in that scrape.
    for f in FAMILIES {
        assert!(text.contains(&format!("# TYPE {} ", f.name)), "{}", f.name);
    }
}

#[test]
fn the_alert_rules_pass_promtool_check_rules() {
    let out = tool("promtool")
        .args(["check", "rules"])
        .arg(monitoring("alerts.yml"))
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_alert_rules_use_only_exported_metrics() {
    let text = std::fs::read_to_string(monitoring("alerts.yml")).expect("read alerts.yml");
    let exprs = yaml_exprs(&text);
    assert!(exprs.len() >= 10, "found {} exprs", exprs.len());
    for e in &exprs {
        check_expr(e, &["up"]);
    }
    let all = exprs.join("\n");
    for needed in [
        "auth_login_attempts_total",
        "ssh_connections_total",
        "ssh_connections_limit",
        "game_session_crashes_total",
    ] {
        assert!(all.contains(needed), "no alert on {needed}");
    }
}

#[test]
fn the_grafana_dashboard_is_valid_and_uses_only_exported_metrics() {
    let text =
        std::fs::read_to_string(monitoring("grafana-dashboard.json")).expect("read dashboard");
    let dash: serde_json::Value = serde_json::from_str(&text).expect("dashboard is JSON");
    assert!(dash["title"].is_string());
    assert!(dash["uid"].is_string());
    let panels = dash["panels"].as_array().expect("panels");
    let mut ids = std::collections::HashSet::new();
    let mut exprs = Vec::new();
    for p in panels {
        let id = p["id"].as_u64().expect("panel id");
        assert!(ids.insert(id), "duplicate panel id {id}");
        assert!(p["gridPos"]["w"].is_u64() && p["gridPos"]["h"].is_u64());
        if p["type"] == "row" {
            continue;
        }
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel {} has no query", p["title"]);
        for t in targets {
            exprs.push(t["expr"].as_str().expect("expr").to_string());
        }
    }
    let mut used = std::collections::HashSet::new();
    for e in &exprs {
        used.extend(check_expr(e, &[]));
    }
    // The issue's panels: connections, auth, handshakes, bytes, games, cores.
    for needed in [
        "ssh_connections_total",
        "ssh_authentication_attempts_total",
        "ssh_handshake_duration_seconds",
        "ssh_bytes_transferred_total",
        "game_instances_active",
        "reactor_core_busy_ratio",
    ] {
        assert!(used.contains(needed), "no panel shows {needed}");
    }
}

/// A real Prometheus server scrapes the HTTP endpoint and answers a query with our value.
#[test]
fn a_real_prometheus_scrapes_the_endpoint_and_reads_a_value_back() {
    let registry = Arc::new(registry());
    populate(&registry);
    let cores = registry.cores();
    for _ in 0..5 {
        cores[1].conn_accepted(); // accepted: 2 + 2 + 5 = 9
    }
    let metrics_addr = spawn_http(registry.clone());

    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: dungeongate\n    \
             metrics_path: /metrics\n    static_configs:\n      - targets: ['{metrics_addr}']\n"
        ),
    )
    .expect("write prometheus.yml");
    let web = free_port();
    let prometheus = tool("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{web}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    let _guard = KillOnDrop(prometheus);

    let query = "/api/v1/query?query=ssh_connections_total%7Bstatus%3D%22accepted%22%2Cjob%3D%22dungeongate%22%7D";
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Some(body) = http_get(SocketAddr::from(([127, 0, 0, 1], web)), query) {
            if body.contains(r#""9"]"#) {
                return;
            }
            last = body;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("prometheus never reported the value; last answer: {last}");
}

// ------------------------------------------------------------------------------------------

/// Serve `registry` on a loopback port: the sans-io server driven by a plain blocking loop
/// on a thread of its own (one connection at a time is plenty for a scraper).
fn spawn_http(registry: Arc<Registry>) -> SocketAddr {
    use dungeongate::metrics::{HttpEvent, HttpServer};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind http listener");
    let addr = listener.local_addr().expect("local addr");
    std::thread::spawn(move || {
        let mut server = HttpServer::new(HttpState::new(registry));
        let start = Instant::now();
        let now = || u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let source = s.peer_addr().ok().map(|a| a.ip());
            let Some(id) = server.admit(source, now()) else {
                continue;
            };
            let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
            let mut buf = [0u8; 4096];
            while !server.is_done(id) {
                while let Some(job) = server.poll_probe() {
                    server.handle_probe_done(job.run(), now());
                }
                while let Some(event) = server.poll_event() {
                    match event {
                        HttpEvent::Transmit(c) => {
                            let out = server.transmit(c).to_vec();
                            if s.write_all(&out).is_ok() {
                                server.advance_transmit(c, out.len(), now());
                            }
                        }
                        HttpEvent::ShutdownWrite(_) => {
                            let _ = s.shutdown(std::net::Shutdown::Write);
                        }
                        HttpEvent::Close(_) => {}
                    }
                }
                if server.wants_read(id) {
                    match s.read(&mut buf) {
                        Ok(0) => server.handle_eof(id, now()),
                        Ok(n) => server.handle_input(id, &buf[..n], now()),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                        Err(_) => server.handle_eof(id, now()),
                    }
                }
                if server.poll_timeout().is_some_and(|t| t <= now()) {
                    server.handle_timeout(now());
                }
            }
            server.closed(id);
        }
    });
    addr
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// GET `path` (HTTP/1.0-style, closes), returning the body of a 200.
fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// Ends the child process we started, even when the test fails.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `expr:` values of a rules file (single-line or `|` blocks).
fn yaml_exprs(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("expr:") {
            let rest = rest.trim();
            if rest == "|" || rest == ">" {
                let indent = line.len() - trimmed.len();
                let mut block = String::new();
                i += 1;
                while i < lines.len() {
                    let l = lines[i];
                    let ind = l.len() - l.trim_start().len();
                    if !l.trim().is_empty() && ind <= indent {
                        break;
                    }
                    block.push_str(l.trim());
                    block.push(' ');
                    i += 1;
                }
                out.push(block);
                continue;
            }
            out.push(rest.to_string());
        }
        i += 1;
    }
    out
}

/// Check that every metric name in a PromQL expression is an exported family (or one of
/// `extra`), and return the family names used. Label matchers, strings, ranges and grouping
/// lists are skipped; identifiers followed by `(` are functions.
fn check_expr(expr: &str, extra: &[&str]) -> Vec<String> {
    const GROUPING: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    const KEYWORDS: [&str; 17] = [
        "and",
        "or",
        "unless",
        "bool",
        "offset", // binary operators and modifiers
        "sum",
        "avg",
        "min",
        "max",
        "count",
        "group",
        "stddev",
        "stdvar", // aggregations,
        "topk",
        "bottomk",
        "quantile",
        "count_values", // which may precede `by (…)`
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    let mut skip_next_group = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '{' | '[' | '"' => {
                let close = match c {
                    '{' => '}',
                    '[' => ']',
                    _ => '"',
                };
                i += 1;
                while i < chars.len() && chars[i] != close {
                    if chars[i] == '"' && close != '"' {
                        i += 1;
                        while i < chars.len() && chars[i] != '"' {
                            i += 1;
                        }
                    }
                    i += 1;
                }
                i += 1;
            }
            '(' if skip_next_group => {
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
                skip_next_group = false;
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let mut j = i;
                while j < chars.len() && chars[j] == ' ' {
                    j += 1;
                }
                let is_call = j < chars.len() && chars[j] == '(';
                if GROUPING.contains(&word.as_str()) {
                    skip_next_group = true;
                } else if !is_call && !KEYWORDS.contains(&word.as_str()) {
                    names.push(word);
                }
            }
            _ => i += 1,
        }
    }
    assert!(!names.is_empty(), "no metric in {expr:?}");
    let mut families = Vec::new();
    for n in names {
        if extra.contains(&n.as_str()) {
            continue;
        }
        let family = FAMILIES.iter().find(|f| {
            n == f.name
                || ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|s| n.strip_suffix(s) == Some(f.name))
        });
        match family {
            Some(f) => families.push(f.name.to_string()),
            None => panic!("{n:?} in {expr:?} is not an exported metric"),
        }
    }
    families
}
