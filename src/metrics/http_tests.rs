//! The HTTP server driven in memory: a small stand-in for the reactor plays the sockets
//! (admit, bytes in, bytes out, close) and the blocking pool (probe jobs, run inline or held
//! back), with virtual time.

use super::*;
use crate::metrics::collector::RegistryOptions;
use crate::metrics::health::{Probe, ProbeOutcome};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

fn registry() -> Arc<Registry> {
    Arc::new(Registry::new(RegistryOptions {
        cores: 2,
        game_ids: vec!["nethack".into()],
        connections_limit: 100,
        version: "1.2.3".into(),
        commit: "abcdef".into(),
    }))
}

/// The client side of one connection, as the reactor would see it.
#[derive(Debug, Default)]
struct Peer {
    /// Everything written to the socket.
    received: Vec<u8>,
    /// The server asked for the write side to be shut.
    write_shut: bool,
    /// The server asked for the close (and `closed` was reported).
    closed: bool,
    /// Largest write the socket takes at once (0: everything).
    chunk: usize,
    /// The client does not read: nothing can be written.
    stalled: bool,
}

/// A server and the reactor stand-in around it.
struct Harness {
    server: HttpServer,
    now: Millis,
    /// Keep probe jobs instead of running them at once.
    hold_probes: bool,
    held: Vec<ProbeJob>,
    peers: HashMap<HttpConnId, Peer>,
}

impl Harness {
    /// A server from `configure(state)`, every core beating.
    fn new(configure: impl FnOnce(&mut HttpState)) -> Harness {
        let mut state = HttpState::new(registry());
        for c in state.registry.cores() {
            c.heartbeat();
        }
        configure(&mut state);
        Harness {
            server: HttpServer::new(state),
            now: 1_000,
            hold_probes: false,
            held: Vec::new(),
            peers: HashMap::new(),
        }
    }

    /// Accept a connection from `source` (`None`: the server refused it).
    fn connect_from(&mut self, source: [u8; 4]) -> Option<HttpConnId> {
        let id = self.server.admit(Some(IpAddr::from(source)), self.now)?;
        self.peers.insert(id, Peer::default());
        Some(id)
    }

    fn connect(&mut self) -> Option<HttpConnId> {
        self.connect_from([127, 0, 0, 1])
    }

    fn send(&mut self, id: HttpConnId, bytes: &[u8]) {
        self.server.handle_input(id, bytes, self.now);
        self.pump();
    }

    fn eof(&mut self, id: HttpConnId) {
        self.server.handle_eof(id, self.now);
        self.pump();
    }

    /// Let `ms` pass, firing the server's timer when due.
    fn advance(&mut self, ms: Millis) {
        self.now += ms;
        if self.server.poll_timeout().is_some_and(|t| t <= self.now) {
            self.server.handle_timeout(self.now);
        }
        self.pump();
    }

    /// Carry out everything the server asks until it asks nothing more.
    fn pump(&mut self) {
        loop {
            let mut progressed = false;
            if !self.hold_probes {
                while let Some(job) = self.server.poll_probe() {
                    self.server.handle_probe_done(job.run(), self.now);
                    progressed = true;
                }
            } else {
                while let Some(job) = self.server.poll_probe() {
                    self.held.push(job);
                }
            }
            while let Some(event) = self.server.poll_event() {
                progressed = true;
                match event {
                    HttpEvent::Transmit(id) => self.write(id),
                    HttpEvent::ShutdownWrite(id) => self.peer(id).write_shut = true,
                    HttpEvent::Close(id) => {
                        self.peer(id).closed = true;
                        self.server.closed(id);
                    }
                }
            }
            if !progressed {
                return;
            }
        }
    }

    /// Write what the server has for `id`, as much as the peer takes.
    fn write(&mut self, id: HttpConnId) {
        loop {
            let peer = self.peers.entry(id).or_default();
            let out = self.server.transmit(id);
            if out.is_empty() || peer.stalled {
                return;
            }
            let n = if peer.chunk == 0 {
                out.len()
            } else {
                peer.chunk.min(out.len())
            };
            peer.received.extend_from_slice(&out[..n]);
            self.server.advance_transmit(id, n, self.now);
        }
    }

    /// Resume writing to a peer that now reads.
    fn unstall(&mut self, id: HttpConnId) {
        self.peer(id).stalled = false;
        self.write(id);
        self.pump();
    }

    fn peer(&mut self, id: HttpConnId) -> &mut Peer {
        self.peers.entry(id).or_default()
    }

    fn response(&self, id: HttpConnId) -> String {
        let received = self.peers.get(&id).map(|p| p.received.as_slice());
        String::from_utf8_lossy(received.unwrap_or_default()).into_owned()
    }

    /// One whole exchange from 127.0.0.1: connect, send `raw`, take the response (empty when
    /// the connection was refused).
    fn exchange(&mut self, raw: &[u8]) -> String {
        self.exchange_from([127, 0, 0, 1], raw)
    }

    fn exchange_from(&mut self, source: [u8; 4], raw: &[u8]) -> String {
        let Some(id) = self.connect_from(source) else {
            return String::new();
        };
        self.send(id, raw);
        let peer = self.peer(id);
        assert!(
            peer.write_shut || peer.closed,
            "the response is not complete: {peer:?}"
        );
        // The client goes away: the lingering close ends.
        self.eof(id);
        assert!(self.peer(id).closed, "closed after the client's EOF");
        self.response(id)
    }
}

fn status(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

fn components(response: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(body(response)).unwrap_or_default();
    v["checks"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["component"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

// --- routes and statuses ---------------------------------------------------------------

#[test]
fn get_metrics_returns_the_scrape_in_text_format() {
    let mut h = Harness::new(|_| {});
    let r = h.exchange(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status(&r), 200, "{r}");
    assert!(r.starts_with(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: "
    ));
    assert!(r.contains("\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"));
    assert!(body(&r).contains("ssh_connections_total{status=\"accepted\"} 0"));
    assert!(body(&r).contains("service_build_info{version=\"1.2.3\",commit=\"abcdef\"} 1"));
}

#[test]
fn the_metrics_path_comes_from_the_configuration() {
    let mut h = Harness::new(|s| s.metrics_path = "/private/scrape".into());
    let r = h.exchange(b"GET /private/scrape?x=1 HTTP/1.1\r\n\r\n");
    assert_eq!(status(&r), 200, "{r}");
    let r = h.exchange(b"GET /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(status(&r), 404, "{r}");
}

#[test]
fn disabled_metrics_are_not_found_but_health_still_answers() {
    let mut h = Harness::new(|s| s.metrics_enabled = false);
    let r = h.exchange(b"GET /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(status(&r), 404, "{r}");
    let r = h.exchange(b"GET /health HTTP/1.1\r\n\r\n");
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(body(&r), r#"{"status":"ok"}"#);
}

#[test]
fn head_announces_the_length_without_a_body() {
    let mut h = Harness::new(|_| {});
    let r = h.exchange(b"HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(body(&r), "");
    let len: usize = r
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(len > 1000, "{r}");
    // HEAD of a readiness-dependent route waits for the probe like GET, and has no body.
    let r = h.exchange(b"HEAD /health HTTP/1.1\r\n\r\n");
    assert_eq!(
        r,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn an_unknown_path_is_404() {
    let mut h = Harness::new(|_| {});
    let r = h.exchange(b"GET /admin HTTP/1.1\r\n\r\n");
    assert_eq!(
        r,
        "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: 10\r\nCache-Control: no-store\r\nConnection: close\r\n\r\nnot found\n"
    );
}

#[test]
fn post_is_405_with_the_allowed_methods() {
    let mut h = Harness::new(|_| {});
    let r = h.exchange(b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
    assert_eq!(
        r,
        "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: 19\r\nCache-Control: no-store\r\nConnection: close\r\n\
         Allow: GET, HEAD\r\n\r\nmethod not allowed\n"
    );
}

#[test]
fn malformed_requests_are_400() {
    let mut h = Harness::new(|_| {});
    for raw in [
        &b"NONSENSE\r\n\r\n"[..],
        b"GET /metrics HTTP/9.9\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nBad Header\r\n\r\n",
        b"\x00\x01\x02\r\n\r\n",
    ] {
        let r = h.exchange(raw);
        assert_eq!(status(&r), 400, "{raw:?} → {r}");
        assert_eq!(body(&r), "malformed request\n");
    }
}

#[test]
fn a_head_cut_short_by_the_clients_eof_is_400_and_an_empty_one_gets_no_answer() {
    let mut h = Harness::new(|_| {});
    let Some(id) = h.connect() else {
        panic!("admitted")
    };
    h.send(id, b"GET /metrics HT");
    h.eof(id);
    assert_eq!(status(&h.response(id)), 400);
    assert!(h.peer(id).closed, "nothing left to read: closed at once");
    let Some(id) = h.connect() else {
        panic!("admitted")
    };
    h.eof(id);
    assert!(h.peer(id).closed);
    assert_eq!(h.response(id), "");
    assert_eq!(h.server.open_connections(), 0);
}

#[test]
fn an_oversized_head_is_431() {
    let mut h = Harness::new(|_| {});
    let mut raw = b"GET /metrics HTTP/1.1\r\nX-Filler: ".to_vec();
    raw.extend(std::iter::repeat_n(b'a', 9000));
    raw.extend_from_slice(b"\r\n\r\n");
    let r = h.exchange(&raw);
    assert_eq!(status(&r), 431, "{r}");
    assert_eq!(body(&r), "request head too large\n");
    let mut many = b"GET /metrics HTTP/1.1\r\n".to_vec();
    for i in 0..40 {
        many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    let r = h.exchange(&many);
    assert_eq!(status(&r), 431, "{r}");
}

#[test]
fn a_head_of_exactly_the_limit_is_served_and_one_byte_more_is_431() {
    let mut h = Harness::new(|s| s.limits.max_head_bytes = 64);
    let head = |len: usize| {
        let start = b"GET /health/live HTTP/1.1\r\nX: ";
        let mut raw = start.to_vec();
        raw.extend(std::iter::repeat_n(b'a', len - start.len() - 4));
        raw.extend_from_slice(b"\r\n\r\n");
        raw
    };
    assert_eq!(status(&h.exchange(&head(64))), 200);
    // Byte by byte too: the limit counts what was buffered, however it arrived.
    let Some(id) = h.connect() else {
        panic!("admitted")
    };
    for b in head(65) {
        h.send(id, &[b]);
    }
    assert_eq!(status(&h.response(id)), 431);
}

#[test]
fn a_slow_client_does_not_block_another() {
    // Long head timeout: the slow client is still pending while the other is served.
    let mut h = Harness::new(|s| s.limits.head_timeout = Duration::from_secs(600));
    let Some(slow) = h.connect() else {
        panic!("admitted")
    };
    h.send(slow, b"GET /metr");
    assert!(h.server.wants_read(slow));
    let r = h.exchange(b"GET /health/live HTTP/1.1\r\n\r\n");
    assert_eq!(status(&r), 200, "{r}");
    // The slow client finishes later and is served too.
    h.advance(30_000);
    h.send(slow, b"ics HTTP/1.1\r\n\r\n");
    assert_eq!(status(&h.response(slow)), 200);
}

#[test]
fn a_client_that_never_finishes_its_head_is_timed_out() {
    let mut h = Harness::new(|s| s.limits.head_timeout = Duration::from_millis(100));
    let Some(slow) = h.connect() else {
        panic!("admitted")
    };
    h.send(slow, b"GET /metrics HT");
    assert_eq!(h.server.poll_timeout(), Some(h.now + 100));
    h.advance(99);
    assert_eq!(h.response(slow), "");
    h.advance(1);
    let r = h.response(slow);
    assert_eq!(status(&r), 408, "{r}");
    assert_eq!(body(&r), "request head not received in time\n");
}

#[test]
fn connections_past_the_limit_are_closed_without_an_answer() {
    let mut h = Harness::new(|s| {
        s.limits.max_connections = 1;
        s.limits.head_timeout = Duration::from_secs(600);
    });
    let Some(first) = h.connect() else {
        panic!("admitted")
    };
    h.send(first, b"GET /");
    assert_eq!(h.exchange(b"GET /health HTTP/1.1\r\n\r\n"), "");
    h.send(first, b"health HTTP/1.1\r\n\r\n");
    assert_eq!(status(&h.response(first)), 200);
    // Closing gives the slot back.
    h.eof(first);
    assert!(h.peer(first).closed);
    assert_eq!(status(&h.exchange(b"GET /health HTTP/1.1\r\n\r\n")), 200);
}

#[test]
fn one_client_address_cannot_take_every_slot() {
    let mut h = Harness::new(|s| {
        s.limits.max_per_source = 3;
        s.limits.head_timeout = Duration::from_secs(30);
    });
    // Three slow clients from 127.0.0.1 that never finish their request...
    for _ in 0..3 {
        let Some(c) = h.connect() else {
            panic!("admitted")
        };
        h.send(c, b"GET /health/live HTTP/1.1\r\n");
    }
    // ...a fourth from the same address is closed without an answer...
    let r = h.exchange(b"GET /health/live HTTP/1.1\r\n\r\n");
    assert_eq!(r, "", "{r}");
    // ...while another address still gets its liveness answer.
    let r = h.exchange_from([127, 0, 0, 2], b"GET /health/live HTTP/1.1\r\n\r\n");
    assert_eq!(status(&r), 200, "{r}");
}

// --- health ----------------------------------------------------------------------------

#[test]
fn ready_is_503_with_the_failing_component_in_json() {
    let mut h = Harness::new(|s| {
        s.ready_probes
            .push(Probe::new("ssh_listener", || ProbeOutcome::ok("bound")));
        s.ready_probes
            .push(Probe::new("lmdb", || ProbeOutcome::fail("read-only")));
    });
    let r = h.exchange(b"GET /health/ready HTTP/1.1\r\n\r\n");
    assert_eq!(status(&r), 503, "{r}");
    assert!(r.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{r}");
    assert!(r.contains("Content-Type: application/json"), "{r}");
    let v: serde_json::Value = serde_json::from_str(body(&r)).unwrap_or_default();
    assert_eq!(v["status"], "fail");
    assert_eq!(v["checks"][0]["status"], "ok");
    assert_eq!(v["checks"][1]["component"], "lmdb");
    assert_eq!(v["checks"][1]["status"], "fail");
    assert_eq!(v["checks"][1]["details"], "read-only");
    let r = h.exchange(b"GET /health HTTP/1.1\r\n\r\n");
    assert_eq!(status(&r), 503, "{r}");
    assert_eq!(body(&r), r#"{"status":"fail"}"#);
}

#[test]
fn live_lists_the_process_and_every_core() {
    let mut h = Harness::new(|_| {});
    let r = h.exchange(b"GET /health/live HTTP/1.1\r\n\r\n");
    assert_eq!(status(&r), 200, "{r}");
    let v: serde_json::Value = serde_json::from_str(body(&r)).unwrap_or_default();
    assert_eq!(v["status"], "ok");
    assert_eq!(components(&r), ["process", "core 0", "core 1"]);
}

#[test]
fn health_fails_on_a_stale_heartbeat_without_waiting_for_readiness() {
    let Some(hour_ago) = std::time::Instant::now().checked_sub(Duration::from_secs(3600)) else {
        return;
    };
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let mut state = HttpState::new(Arc::new(Registry::with_epoch(
        RegistryOptions {
            cores: 1,
            game_ids: vec![],
            connections_limit: 1,
            version: "t".into(),
            commit: "t".into(),
        },
        hour_ago,
    )));
    state.ready_probes.push(Probe::new("lmdb", move || {
        counted.fetch_add(1, Ordering::Relaxed);
        ProbeOutcome::ok("written")
    }));
    let mut h = Harness::new(|_| {});
    h.server = HttpServer::new(state);
    let r = h.exchange(b"GET /health HTTP/1.1\r\n\r\n");
    assert_eq!(status(&r), 503, "{r}");
    assert_eq!(body(&r), r#"{"status":"fail"}"#);
    assert_eq!(runs.load(Ordering::Relaxed), 0, "no probe was needed");
    let r = h.exchange(b"GET /health/live HTTP/1.1\r\n\r\n");
    assert_eq!(status(&r), 503, "{r}");
}

#[test]
fn parse_head_waits_for_the_blank_line() {
    assert!(matches!(
        parse_head(b"GET / HTTP/1.1\r\nHost: x\r\n"),
        Ok(None)
    ));
    let head = parse_head(b"GET /a?b HTTP/1.0\r\n\r\n");
    assert!(matches!(head, Ok(Some(ref h)) if h.method == "GET" && h.target == "/a?b"));
}

#[test]
fn readiness_probes_run_at_most_once_per_cache_period_however_often_asked() {
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let mut h = Harness::new(move |s| {
        s.limits.ready_cache = Duration::from_secs(3600);
        s.ready_probes.push(Probe::new("lmdb", move || {
            counted.fetch_add(1, Ordering::Relaxed);
            ProbeOutcome::ok("written")
        }));
    });
    for _ in 0..20 {
        let r = h.exchange(b"GET /health/ready HTTP/1.1\r\n\r\n");
        assert_eq!(status(&r), 200, "{r}");
        let r = h.exchange(b"GET /health HTTP/1.1\r\n\r\n");
        assert_eq!(status(&r), 200, "{r}");
        h.advance(60_000);
    }
    assert_eq!(runs.load(Ordering::Relaxed), 1);
}

#[test]
fn a_stale_readiness_report_is_made_again() {
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let mut h = Harness::new(move |s| {
        s.ready_probes.push(Probe::new("lmdb", move || {
            counted.fetch_add(1, Ordering::Relaxed);
            ProbeOutcome::ok("written")
        }));
    });
    assert_eq!(
        status(&h.exchange(b"GET /health/ready HTTP/1.1\r\n\r\n")),
        200
    );
    h.advance(999);
    assert_eq!(
        status(&h.exchange(b"GET /health/ready HTTP/1.1\r\n\r\n")),
        200
    );
    assert_eq!(runs.load(Ordering::Relaxed), 1, "reused within a second");
    h.advance(1);
    assert_eq!(
        status(&h.exchange(b"GET /health/ready HTTP/1.1\r\n\r\n")),
        200
    );
    assert_eq!(runs.load(Ordering::Relaxed), 2, "made again after a second");
}

#[test]
fn requests_waiting_for_readiness_share_one_probe_job() {
    let mut h = Harness::new(|s| {
        s.ready_probes
            .push(Probe::new("lmdb", || ProbeOutcome::ok("written")));
    });
    h.hold_probes = true;
    let mut waiting = Vec::new();
    for path in ["/health/ready", "/health", "/health/ready"] {
        let Some(id) = h.connect() else {
            panic!("admitted")
        };
        h.send(id, format!("GET {path} HTTP/1.1\r\n\r\n").as_bytes());
        assert!(!h.server.wants_read(id), "waiting, not reading");
        assert!(h.server.transmit(id).is_empty());
        waiting.push(id);
    }
    // Others are not held up meanwhile.
    assert_eq!(
        status(&h.exchange(b"GET /health/live HTTP/1.1\r\n\r\n")),
        200
    );
    assert_eq!(h.held.len(), 1, "one probe job for all of them");
    // Waiting for the probe has no deadline of its own.
    assert_eq!(h.server.poll_timeout(), None);
    let Some(job) = h.held.pop() else {
        panic!("held")
    };
    h.server.handle_probe_done(job.run(), h.now);
    h.pump();
    assert_eq!(components(&h.response(waiting[0])), ["lmdb"]);
    assert_eq!(body(&h.response(waiting[1])), r#"{"status":"ok"}"#);
    assert_eq!(components(&h.response(waiting[2])), ["lmdb"]);
}

#[test]
fn a_connection_closed_while_waiting_for_readiness_is_forgotten() {
    let mut h = Harness::new(|_| {});
    h.hold_probes = true;
    let Some(id) = h.connect() else {
        panic!("admitted")
    };
    h.send(id, b"GET /health/ready HTTP/1.1\r\n\r\n");
    // The reactor saw the socket fail and closed it.
    h.server.closed(id);
    assert_eq!(h.server.open_connections(), 0);
    let Some(job) = h.held.pop() else {
        panic!("held")
    };
    h.server.handle_probe_done(job.run(), h.now);
    assert_eq!(h.server.poll_event(), None);
}

#[test]
fn probe_jobs_cross_threads() {
    fn send<T: Send>() {}
    send::<ProbeJob>();
    send::<ProbeDone>();
}

// --- writing and closing ---------------------------------------------------------------

#[test]
fn a_response_written_in_pieces_arrives_whole_then_the_write_side_is_shut() {
    let mut h = Harness::new(|_| {});
    let Some(id) = h.connect() else {
        panic!("admitted")
    };
    h.peer(id).chunk = 7;
    h.send(id, b"GET /metrics HTTP/1.1\r\n\r\n");
    let r = h.response(id);
    let len: usize = r
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert_eq!(body(&r).len(), len);
    assert!(h.peer(id).write_shut);
    assert!(!h.peer(id).closed, "lingering");
    assert!(h.server.wants_read(id));
}

#[test]
fn leftover_input_is_discarded_for_at_most_a_second_or_64_kib() {
    let mut h = Harness::new(|_| {});
    // A second.
    let Some(a) = h.connect() else {
        panic!("admitted")
    };
    h.send(a, b"GET /health/live HTTP/1.1\r\n\r\nleftover");
    assert!(h.peer(a).write_shut);
    h.send(a, &[0; 1000]);
    h.advance(999);
    assert!(!h.peer(a).closed);
    h.advance(1);
    assert!(h.peer(a).closed);
    // 64 KiB.
    let Some(b) = h.connect() else {
        panic!("admitted")
    };
    h.send(b, b"GET /health/live HTTP/1.1\r\n\r\n");
    h.send(b, &[0; 64 * 1024 - 1]);
    assert!(!h.peer(b).closed);
    h.send(b, &[0]);
    assert!(h.peer(b).closed);
    assert_eq!(h.server.open_connections(), 0);
}

#[test]
fn a_client_that_does_not_take_its_response_is_dropped() {
    let mut h = Harness::new(|s| s.limits.write_timeout = Duration::from_secs(10));
    let Some(id) = h.connect() else {
        panic!("admitted")
    };
    h.peer(id).stalled = true;
    h.send(id, b"GET /metrics HTTP/1.1\r\n\r\n");
    assert!(!h.server.transmit(id).is_empty());
    assert!(!h.server.wants_read(id));
    h.advance(9_999);
    assert!(!h.peer(id).closed);
    h.advance(1);
    assert!(h.peer(id).closed);
    assert!(!h.peer(id).write_shut, "dropped, not lingering");
    // Late progress on a dropped connection changes nothing.
    h.unstall(id);
    assert_eq!(h.response(id), "");
}

#[test]
fn an_id_of_a_closed_connection_names_nothing() {
    let mut h = Harness::new(|s| s.limits.max_connections = 1);
    let Some(old) = h.connect() else {
        panic!("admitted")
    };
    h.server.closed(old);
    let Some(new) = h.connect() else {
        panic!("admitted")
    };
    assert_ne!(old, new);
    h.server
        .handle_input(old, b"GET /metrics HTTP/1.1\r\n\r\n", h.now);
    h.server.handle_eof(old, h.now);
    h.server.advance_transmit(old, 10, h.now);
    h.server.closed(old);
    assert!(h.server.is_done(old));
    assert!(!h.server.wants_read(old));
    assert!(h.server.transmit(old).is_empty());
    assert_eq!(h.server.poll_event(), None);
    // The new connection is untouched.
    assert!(!h.server.is_done(new));
    assert_eq!(h.server.open_connections(), 1);
    h.send(new, b"GET /health/live HTTP/1.1\r\n\r\n");
    assert_eq!(status(&h.response(new)), 200);
}
