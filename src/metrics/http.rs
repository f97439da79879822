//! The operators' HTTP/1.1 endpoint on the control core (glommio): the Prometheus scrape at
//! the configured path, `/health`, `/health/live`, `/health/ready` (RFC 9110 semantics,
//! RFC 9112 message syntax; requests parsed by `httparse`).
//!
//! One request per connection (`Connection: close`). Each connection is its own task, so a
//! slow client only holds its own task; the request head is bounded in size
//! (`max_head_bytes`, else 431) and time (`head_timeout`, else 408 and close), the response
//! write in time (`write_timeout`), and the number of open connections
//! (`max_connections`, extra ones are closed at once).
//! Only GET and HEAD exist (405 otherwise); unknown paths are 404; malformed requests 400.

use super::collector::Registry;
use super::health::{self, Report};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{IpAddr, Shutdown};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

/// `Content-Type` of the scrape (Prometheus text exposition format 0.0.4).
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Bounds that keep one client from costing more than its share.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Largest request head (request line + headers) accepted; larger is 431.
    pub max_head_bytes: usize,
    /// Time allowed to send the whole head; slower clients get 408 and are closed.
    pub head_timeout: Duration,
    /// Time allowed to take the response; a client that does not read is dropped.
    pub write_timeout: Duration,
    /// Open HTTP connections at once; more are closed without a response.
    pub max_connections: usize,
    /// `/health/live` fails a data core whose heartbeat is older than this.
    pub heartbeat_max_age: Duration,
    /// Open connections per client address: one client cannot take every slot (and so
    /// make a liveness probe fail).
    pub max_per_source: usize,
    /// How long a readiness result is reused.
    pub ready_cache: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_head_bytes: 8 * 1024,
            head_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
            max_connections: 64,
            heartbeat_max_age: Duration::from_secs(5),
            max_per_source: 8,
            ready_cache: Duration::from_secs(1),
        }
    }
}

/// What the HTTP server serves. Lives on the control core (`Rc`).
pub struct HttpState {
    /// The metric cells of every core, rendered per scrape.
    pub registry: Arc<Registry>,
    /// `metrics.enabled`: when false the metrics path is 404 (health stays).
    pub metrics_enabled: bool,
    /// `metrics.path`, e.g. `/metrics`.
    pub metrics_path: String,
    /// Extra checks of `/health/live` (after the process and heartbeat checks).
    pub live_probes: Vec<health::Probe>,
    /// Checks of `/health/ready`: listeners bound, account store writable, not draining.
    pub ready_probes: Vec<health::Probe>,
    /// Size, time and count bounds.
    pub limits: HttpLimits,
    /// Connections open now (for `limits.max_connections`).
    open: Cell<usize>,
    /// Connections open now per client address (for `limits.max_per_source`).
    open_by_source: RefCell<HashMap<IpAddr, usize>>,
    /// The last readiness report and when it was made.
    ready_cached: RefCell<Option<(Instant, Report)>>,
}

impl HttpState {
    /// Metrics on at `/metrics`, no probes, default limits.
    pub fn new(registry: Arc<Registry>) -> HttpState {
        HttpState {
            registry,
            metrics_enabled: true,
            metrics_path: "/metrics".into(),
            live_probes: Vec::new(),
            ready_probes: Vec::new(),
            limits: HttpLimits::default(),
            open: Cell::new(0),
            open_by_source: RefCell::new(HashMap::new()),
            ready_cached: RefCell::new(None),
        }
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.open.get()
    }
}

/// Accept and serve connections forever (cancel by dropping the task). Spawn on the control
/// executor: `glommio::spawn_local(http::serve(listener, state)).detach()`.
pub async fn serve(listener: TcpListener, state: Rc<HttpState>) {
    loop {
        let stream = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "http accept failed");
                glommio::timer::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let source = stream.peer_addr().map(|a| a.ip()).ok();
        let Some(slot) = OpenSlot::take(state.clone(), source) else {
            drop(stream);
            continue;
        };
        glommio::spawn_local(connection(stream, slot)).detach();
    }
}

/// Counts a connection as open for as long as it lives (also when its task is cancelled).
struct OpenSlot(Rc<HttpState>, Option<IpAddr>);

impl OpenSlot {
    /// A slot, unless the server or this client address has all it may have open.
    fn take(state: Rc<HttpState>, source: Option<IpAddr>) -> Option<OpenSlot> {
        if state.open.get() >= state.limits.max_connections {
            return None;
        }
        if let Some(ip) = source {
            let mut by = state.open_by_source.borrow_mut();
            let n = by.entry(ip).or_insert(0);
            if *n >= state.limits.max_per_source {
                return None;
            }
            *n += 1;
        }
        state.open.set(state.open.get().saturating_add(1));
        Some(OpenSlot(state, source))
    }
}

impl Drop for OpenSlot {
    fn drop(&mut self) {
        self.0.open.set(self.0.open.get().saturating_sub(1));
        if let Some(ip) = self.1 {
            let mut by = self.0.open_by_source.borrow_mut();
            if let Some(n) = by.get_mut(&ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    by.remove(&ip);
                }
            }
        }
    }
}

/// Serve one request on `stream`, then close it.
async fn connection(mut stream: TcpStream, slot: OpenSlot) {
    let state = &slot.0;
    let limits = state.limits.clone();
    let max = limits.max_head_bytes;
    let head = glommio::timer::timeout(limits.head_timeout, async {
        Ok(read_head(&mut stream, max).await)
    })
    .await;
    let response = match head {
        Err(_) => Response::text(408, "request head not received in time\n"),
        Ok(Err(HeadError::Closed)) => return,
        Ok(Err(HeadError::TooLarge)) => Response::text(431, "request head too large\n"),
        Ok(Err(HeadError::Malformed)) => Response::text(400, "malformed request\n"),
        Ok(Ok(req)) => respond(state, &req).await,
    };
    let bytes = response.encode();
    let written = glommio::timer::timeout(limits.write_timeout, async {
        stream.write_all(&bytes).await?;
        stream.flush().await?;
        Ok(())
    })
    .await;
    if written.is_err() {
        return;
    }
    // Lingering close: half-close, then discard what the client still sends for a moment,
    // so unread request bytes do not turn our close into a reset that eats the response.
    let _ = stream.shutdown(Shutdown::Write).await;
    let _ = glommio::timer::timeout(Duration::from_secs(1), async {
        let mut sink = [0u8; 1024];
        let mut left = 64 * 1024usize;
        while left > 0 {
            let n = stream.read(&mut sink).await?;
            if n == 0 {
                break;
            }
            left = left.saturating_sub(n);
        }
        Ok(())
    })
    .await;
}

/// The parts of a request head we use.
#[derive(Debug)]
struct RequestHead {
    /// Request method as sent (case-sensitive, RFC 9110 §9.1).
    method: String,
    /// Request target (origin-form), query included.
    target: String,
}

/// Why no request head came.
#[derive(Debug, PartialEq, Eq)]
enum HeadError {
    /// Closed (or reset) before sending anything: nothing to answer.
    Closed,
    /// More than `max_head_bytes`, or too many header lines.
    TooLarge,
    /// Not an HTTP/1.x request head (including a head cut short by EOF).
    Malformed,
}

/// Header lines accepted in a head.
const MAX_HEADERS: usize = 32;

/// Read until a complete request head is buffered (at most `max` bytes).
async fn read_head(stream: &mut TcpStream, max: usize) -> Result<RequestHead, HeadError> {
    let mut buf = vec![0u8; max];
    let mut len = 0usize;
    loop {
        let spare = match buf.get_mut(len..) {
            Some(s) if !s.is_empty() => s,
            _ => return Err(HeadError::TooLarge),
        };
        let n = match stream.read(spare).await {
            Ok(n) => n,
            Err(_) if len == 0 => return Err(HeadError::Closed),
            Err(_) => return Err(HeadError::Malformed),
        };
        if n == 0 {
            return Err(if len == 0 {
                HeadError::Closed
            } else {
                HeadError::Malformed
            });
        }
        len = len.saturating_add(n);
        if let Some(head) = parse_head(buf.get(..len).unwrap_or_default())? {
            return Ok(head);
        }
    }
}

/// Parse a buffered head: `Ok(None)` while incomplete.
fn parse_head(bytes: &[u8]) -> Result<Option<RequestHead>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => Ok(Some(RequestHead {
            method: req.method.unwrap_or_default().to_string(),
            target: req.path.unwrap_or_default().to_string(),
        })),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooLarge),
        Err(_) => Err(HeadError::Malformed),
    }
}

/// The endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Metrics,
    Health,
    Live,
    Ready,
}

/// Route a well-formed request.
async fn respond(state: &HttpState, req: &RequestHead) -> Response {
    let path = req.target.split('?').next().unwrap_or_default();
    let route = match path {
        p if state.metrics_enabled && p == state.metrics_path => Route::Metrics,
        "/health" => Route::Health,
        "/health/live" => Route::Live,
        "/health/ready" => Route::Ready,
        _ => return Response::text(404, "not found\n"),
    };
    let head_only = match req.method.as_str() {
        "GET" => false,
        "HEAD" => true,
        _ => {
            let mut r = Response::text(405, "method not allowed\n");
            r.allow = true;
            return r;
        }
    };
    let mut response = match route {
        Route::Metrics => Response {
            status: 200,
            content_type: METRICS_CONTENT_TYPE,
            body: state.registry.render().into_bytes(),
            allow: false,
            head_only: false,
        },
        Route::Live => Response::report(&live(state)),
        Route::Ready => Response::report(&ready(state).await),
        Route::Health => {
            let ok = live(state).is_ok() && ready(state).await.is_ok();
            let body = if ok {
                &br#"{"status":"ok"}"#[..]
            } else {
                &br#"{"status":"fail"}"#[..]
            };
            Response::json(if ok { 200 } else { 503 }, body.to_vec())
        }
    };
    response.head_only = head_only;
    response
}

/// The readiness report: reused for `ready_cache`, else made by running the probes on a
/// blocking thread (an LMDB commit fsyncs; the control core must not wait on a disk).
async fn ready(state: &HttpState) -> Report {
    if let Some((at, report)) = state.ready_cached.borrow().as_ref() {
        if at.elapsed() < state.limits.ready_cache {
            return report.clone();
        }
    }
    let probes = state.ready_probes.clone();
    let report = glommio::executor()
        .spawn_blocking(move || health::ready(&probes))
        .await;
    *state.ready_cached.borrow_mut() = Some((Instant::now(), report.clone()));
    report
}

fn live(state: &HttpState) -> Report {
    health::live(
        &state.registry,
        state.limits.heartbeat_max_age,
        &state.live_probes,
    )
}

/// A response about to be written.
#[derive(Debug)]
struct Response {
    /// Status code (200, 400, 404, 405, 408, 431, 503).
    status: u16,
    /// `Content-Type`.
    content_type: &'static str,
    /// Body (not sent for HEAD; its length is still announced).
    body: Vec<u8>,
    /// Send `Allow: GET, HEAD` (405).
    allow: bool,
    /// The request was HEAD.
    head_only: bool,
}

impl Response {
    fn text(status: u16, body: &str) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.as_bytes().to_vec(),
            allow: false,
            head_only: false,
        }
    }

    fn json(status: u16, body: Vec<u8>) -> Response {
        Response {
            status,
            content_type: "application/json",
            body,
            allow: false,
            head_only: false,
        }
    }

    /// 200 with the report, or 503 when a check failed.
    fn report(report: &Report) -> Response {
        let body = serde_json::to_vec(report).unwrap_or_else(|_| br#"{"status":"fail"}"#.to_vec());
        Response::json(if report.is_ok() { 200 } else { 503 }, body)
    }

    /// Status line, headers and (unless HEAD) body.
    fn encode(&self) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        if self.allow {
            head.push_str("Allow: GET, HEAD\r\n");
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        if !self.head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

/// Reason phrase of the status codes we send.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    }
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
