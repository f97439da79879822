//! The HTTP server driven over loopback by raw clients on the same glommio executor.

use super::*;
use crate::metrics::collector::RegistryOptions;
use crate::metrics::health::{Probe, ProbeOutcome};
use std::future::Future;
use std::net::SocketAddr;

fn registry() -> Arc<Registry> {
    Arc::new(Registry::new(RegistryOptions {
        cores: 2,
        game_ids: vec!["nethack".into()],
        connections_limit: 100,
        version: "1.2.3".into(),
        commit: "abcdef".into(),
    }))
}

/// Run `client` against a server built from `state` on one executor; the test fails if the
/// client panics (the executor thread's join reports it).
fn with_server<F, Fut>(configure: impl FnOnce(&mut HttpState) + Send + 'static, client: F)
where
    F: FnOnce(SocketAddr) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let result = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .spawn(move || async move {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
            let addr = listener.local_addr().expect("local addr");
            let mut state = HttpState::new(registry());
            for c in state.registry.cores() {
                c.heartbeat();
            }
            configure(&mut state);
            let server = glommio::spawn_local(serve(listener, Rc::new(state)));
            client(addr).await;
            drop(server);
        })
        .and_then(|h| h.join());
    assert!(result.is_ok(), "test executor failed: {result:?}");
}

/// Send `raw`, read until the server closes (bounded), return the response text.
async fn exchange(addr: SocketAddr, raw: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    // A refused connection may be closed before the request is out: read what there is.
    let _ = s.write_all(raw).await;
    read_all(&mut s).await
}

async fn read_all(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let read = glommio::timer::timeout(Duration::from_secs(20), async {
        let _ = s.read_to_end(&mut out).await;
        Ok(())
    })
    .await;
    assert!(read.is_ok(), "server did not close the connection");
    String::from_utf8_lossy(&out).into_owned()
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

#[test]
fn get_metrics_returns_the_scrape_in_text_format() {
    with_server(
        |_| {},
        |addr| async move {
            let r = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
            assert_eq!(status(&r), 200, "{r}");
            assert!(r.contains("Content-Type: text/plain; version=0.0.4"), "{r}");
            assert!(body(&r).contains("ssh_connections_total{status=\"accepted\"} 0"));
            assert!(body(&r).contains("service_build_info{version=\"1.2.3\",commit=\"abcdef\"} 1"));
        },
    );
}

#[test]
fn the_metrics_path_comes_from_the_configuration() {
    with_server(
        |s| s.metrics_path = "/private/scrape".into(),
        |addr| async move {
            let r = exchange(addr, b"GET /private/scrape?x=1 HTTP/1.1\r\n\r\n").await;
            assert_eq!(status(&r), 200, "{r}");
            let r = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n").await;
            assert_eq!(status(&r), 404, "{r}");
        },
    );
}

#[test]
fn disabled_metrics_are_not_found_but_health_still_answers() {
    with_server(
        |s| s.metrics_enabled = false,
        |addr| async move {
            let r = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n").await;
            assert_eq!(status(&r), 404, "{r}");
            let r = exchange(addr, b"GET /health HTTP/1.1\r\n\r\n").await;
            assert_eq!(status(&r), 200, "{r}");
            assert_eq!(body(&r), r#"{"status":"ok"}"#);
        },
    );
}

#[test]
fn head_announces_the_length_without_a_body() {
    with_server(
        |_| {},
        |addr| async move {
            let r = exchange(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n").await;
            assert_eq!(status(&r), 200, "{r}");
            assert_eq!(body(&r), "");
            let len: usize = r
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            assert!(len > 1000, "{r}");
        },
    );
}

#[test]
fn an_unknown_path_is_404() {
    with_server(
        |_| {},
        |addr| async move {
            let r = exchange(addr, b"GET /admin HTTP/1.1\r\n\r\n").await;
            assert_eq!(status(&r), 404, "{r}");
        },
    );
}

#[test]
fn post_is_405_with_the_allowed_methods() {
    with_server(
        |_| {},
        |addr| async move {
            let r = exchange(
                addr,
                b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
            )
            .await;
            assert_eq!(status(&r), 405, "{r}");
            assert!(r.contains("Allow: GET, HEAD"), "{r}");
        },
    );
}

#[test]
fn malformed_requests_are_400() {
    with_server(
        |_| {},
        |addr| async move {
            for raw in [
                &b"NONSENSE\r\n\r\n"[..],
                b"GET /metrics HTTP/9.9\r\n\r\n",
                b"GET /metrics HTTP/1.1\r\nBad Header\r\n\r\n",
                b"\x00\x01\x02\r\n\r\n",
            ] {
                let r = exchange(addr, raw).await;
                assert_eq!(status(&r), 400, "{raw:?} → {r}");
            }
        },
    );
}

#[test]
fn an_oversized_head_is_431() {
    with_server(
        |_| {},
        |addr| async move {
            let mut raw = b"GET /metrics HTTP/1.1\r\nX-Filler: ".to_vec();
            raw.extend(std::iter::repeat_n(b'a', 9000));
            raw.extend_from_slice(b"\r\n\r\n");
            let r = exchange(addr, &raw).await;
            assert_eq!(status(&r), 431, "{r}");
            let mut many = b"GET /metrics HTTP/1.1\r\n".to_vec();
            for i in 0..40 {
                many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
            }
            many.extend_from_slice(b"\r\n");
            let r = exchange(addr, &many).await;
            assert_eq!(status(&r), 431, "{r}");
        },
    );
}

#[test]
fn a_slow_client_does_not_block_another() {
    with_server(
        // Long head timeout: the slow client is still pending while the other is served.
        |s| s.limits.head_timeout = Duration::from_secs(600),
        |addr| async move {
            let mut slow = TcpStream::connect(addr).await.expect("connect");
            slow.write_all(b"GET /metr").await.expect("partial head");
            let r = exchange(addr, b"GET /health/live HTTP/1.1\r\n\r\n").await;
            assert_eq!(status(&r), 200, "{r}");
            // The slow client finishes later and is served too.
            slow.write_all(b"ics HTTP/1.1\r\n\r\n")
                .await
                .expect("rest of head");
            let r = read_all(&mut slow).await;
            assert_eq!(status(&r), 200, "{r}");
        },
    );
}

#[test]
fn a_client_that_never_finishes_its_head_is_timed_out() {
    with_server(
        |s| s.limits.head_timeout = Duration::from_millis(100),
        |addr| async move {
            let mut slow = TcpStream::connect(addr).await.expect("connect");
            slow.write_all(b"GET /metrics HT")
                .await
                .expect("partial head");
            let r = read_all(&mut slow).await;
            assert_eq!(status(&r), 408, "{r}");
        },
    );
}

#[test]
fn connections_past_the_limit_are_closed_without_an_answer() {
    with_server(
        |s| {
            s.limits.max_connections = 1;
            s.limits.head_timeout = Duration::from_secs(600);
        },
        |addr| async move {
            let mut first = TcpStream::connect(addr).await.expect("connect");
            first.write_all(b"GET /").await.expect("partial head");
            // Let the server accept the first connection before the second arrives.
            glommio::timer::sleep(Duration::from_millis(20)).await;
            let r = exchange(addr, b"GET /health HTTP/1.1\r\n\r\n").await;
            assert_eq!(r, "");
            first
                .write_all(b"health HTTP/1.1\r\n\r\n")
                .await
                .expect("rest");
            let r = read_all(&mut first).await;
            assert_eq!(status(&r), 200, "{r}");
        },
    );
}

#[test]
fn ready_is_503_with_the_failing_component_in_json() {
    with_server(
        |s| {
            s.ready_probes
                .push(Probe::new("ssh_listener", || ProbeOutcome::ok("bound")));
            s.ready_probes
                .push(Probe::new("lmdb", || ProbeOutcome::fail("read-only")));
        },
        |addr| async move {
            let r = exchange(addr, b"GET /health/ready HTTP/1.1\r\n\r\n").await;
            assert_eq!(status(&r), 503, "{r}");
            assert!(r.contains("Content-Type: application/json"), "{r}");
            let v: serde_json::Value = serde_json::from_str(body(&r)).unwrap_or_default();
            assert_eq!(v["status"], "fail");
            assert_eq!(v["checks"][0]["status"], "ok");
            assert_eq!(v["checks"][1]["component"], "lmdb");
            assert_eq!(v["checks"][1]["status"], "fail");
            assert_eq!(v["checks"][1]["details"], "read-only");
            let r = exchange(addr, b"GET /health HTTP/1.1\r\n\r\n").await;
            assert_eq!(status(&r), 503, "{r}");
            assert_eq!(body(&r), r#"{"status":"fail"}"#);
        },
    );
}

#[test]
fn live_lists_the_process_and_every_core() {
    with_server(
        |_| {},
        |addr| async move {
            let r = exchange(addr, b"GET /health/live HTTP/1.1\r\n\r\n").await;
            assert_eq!(status(&r), 200, "{r}");
            let v: serde_json::Value = serde_json::from_str(body(&r)).unwrap_or_default();
            assert_eq!(v["status"], "ok");
            let components: Vec<&str> = v["checks"]
                .as_array()
                .map(|a| a.iter().filter_map(|c| c["component"].as_str()).collect())
                .unwrap_or_default();
            assert_eq!(components, ["process", "core 0", "core 1"]);
        },
    );
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
    use std::sync::atomic::{AtomicUsize, Ordering};
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    with_server(
        move |s| {
            s.limits.ready_cache = Duration::from_secs(3600);
            s.ready_probes.push(Probe::new("lmdb", move || {
                counted.fetch_add(1, Ordering::Relaxed);
                ProbeOutcome::ok("written")
            }));
        },
        |addr| async move {
            for _ in 0..20 {
                let r = exchange(addr, b"GET /health/ready HTTP/1.1\r\n\r\n").await;
                assert_eq!(status(&r), 200, "{r}");
            }
        },
    );
    assert_eq!(runs.load(std::sync::atomic::Ordering::Relaxed), 1);
}

#[test]
fn one_client_address_cannot_take_every_slot() {
    with_server(
        |s| {
            s.limits.max_per_source = 3;
            s.limits.head_timeout = Duration::from_secs(30);
        },
        |addr| async move {
            // Three slow clients from 127.0.0.1 that never finish their request...
            let mut slow = Vec::new();
            for _ in 0..3 {
                let mut c = TcpStream::connect(addr).await.expect("connect");
                c.write_all(b"GET /health/live HTTP/1.1\r\n")
                    .await
                    .expect("partial");
                slow.push(c);
            }
            // ...a fourth from the same address is closed without an answer...
            let r = exchange(addr, b"GET /health/live HTTP/1.1\r\n\r\n").await;
            assert_eq!(r, "", "{r}");
            // ...while another address still gets its liveness answer.
            let r = glommio::executor()
                .spawn_blocking(move || get_from([127, 0, 0, 2], addr, "/health/live"))
                .await;
            assert_eq!(status(&r), 200, "{r}");
            drop(slow);
        },
    );
}

/// A blocking GET of `path` from the local address `source` (another 127.x address is another
/// client to the server). Run it off the executor that serves.
fn get_from(source: [u8; 4], addr: SocketAddr, path: &str) -> String {
    use crate::reactor::listen::sockaddr;
    use std::io::{Read, Write};
    use std::os::fd::FromRawFd;
    let (local, local_len) = sockaddr(SocketAddr::from((source, 0)));
    let (remote, remote_len) = sockaddr(addr);
    // SAFETY: plain socket calls on a descriptor the TcpStream owns at once.
    let mut stream = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let stream = std::net::TcpStream::from_raw_fd(fd);
        assert_eq!(
            libc::bind(fd, std::ptr::from_ref(&local).cast(), local_len),
            0
        );
        assert_eq!(
            libc::connect(fd, std::ptr::from_ref(&remote).cast(), remote_len),
            0
        );
        stream
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\n\r\n").as_bytes())
        .expect("request");
    let mut out = String::new();
    let _ = stream.read_to_string(&mut out);
    out
}
