//! The operators' HTTP/1.1 endpoint on the control core, sans-io: the Prometheus scrape at
//! the configured path, `/health`, `/health/live`, `/health/ready` (RFC 9110 semantics,
//! RFC 9112 message syntax; requests parsed by `httparse`).
//!
//! [`HttpServer`] does no I/O and reads no clock: the reactor accepts, reads and writes, and
//! feeds it bytes and the time.
//!
//! ```text
//! accept ──▶ admit(source, now) ── None: close at once
//!                 │ Some(id)
//! recv ────▶ handle_input(id, bytes, now) / handle_eof(id, now)
//! timer ───▶ handle_timeout(now)                    (poll_timeout(): one deadline for all)
//! pool ────▶ handle_probe_done(done, now)           (poll_probe(): run ProbeJob::run there)
//!            poll_event() ─▶ Transmit(id): write transmit(id), then advance_transmit(id, n, now)
//!                          ▶ ShutdownWrite(id): shutdown(SHUT_WR), keep reading (wants_read)
//!                          ▶ Close(id): close the socket, then closed(id)
//! ```
//!
//! One request per connection (`Connection: close`). The request head is bounded in size
//! (`max_head_bytes`, else 431) and time (`head_timeout`, else 408), the response write in
//! time (`write_timeout`, else the connection is dropped), and the number of open connections
//! (`max_connections`, and `max_per_source` per client address: extra ones are refused at
//! `admit`). Only GET and HEAD exist (405 otherwise); unknown paths are 404; malformed
//! requests 400. After the response the write side is shut and what the client still sends
//! is discarded for a moment (at most 1 s and 64 KiB), so unread request bytes do not turn
//! the close into a reset that eats the response.
//!
//! Readiness probes block (an LMDB commit fsyncs), so they never run here: a request that
//! needs a readiness report and finds no fresh one (`ready_cache`) waits for a [`ProbeJob`]
//! the reactor runs on its blocking pool. One probe job is in flight at a time and every
//! waiting connection is answered from its result. Liveness checks and the scrape are cheap
//! reads of atomics and run inline.

use super::collector::Registry;
use super::health::{self, Report};
use crate::ssh::server::Millis;
use slab::Slab;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// `Content-Type` of the scrape (Prometheus text exposition format 0.0.4).
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How long a closing connection's leftover input is read and discarded.
const LINGER_MS: Millis = 1000;
/// How much leftover input is discarded before closing anyway.
const LINGER_BYTES: usize = 64 * 1024;

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

/// What the HTTP server serves (its configuration).
pub struct HttpState {
    /// The metric cells of every core, rendered per scrape.
    pub registry: Arc<Registry>,
    /// `metrics.enabled`: when false the metrics path is 404 (health stays).
    pub metrics_enabled: bool,
    /// `metrics.path`, e.g. `/metrics`.
    pub metrics_path: String,
    /// Extra checks of `/health/live` (after the process and heartbeat checks); they run
    /// inline on the control core, so they must not block.
    pub live_probes: Vec<health::Probe>,
    /// Checks of `/health/ready`: listeners bound, account store writable, not draining.
    /// They run on the blocking pool ([`ProbeJob`]).
    pub ready_probes: Vec<health::Probe>,
    /// Size, time and count bounds.
    pub limits: HttpLimits,
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
        }
    }
}

/// One admitted connection. Never reused: an id from a closed connection names nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HttpConnId {
    /// Index in the connection table.
    key: usize,
    /// Serial of the connection that had the index (never reused).
    serial: u64,
}

/// What the reactor has to do for a connection. An event may name a connection that has
/// been closed since: ignore it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpEvent {
    /// A response is ready: write [`HttpServer::transmit`] (and report progress with
    /// [`HttpServer::advance_transmit`] until it is empty).
    Transmit(HttpConnId),
    /// The response is written: shut the socket's write side and keep reading (the server
    /// discards the input) until `Close`.
    ShutdownWrite(HttpConnId),
    /// Close the socket, then call [`HttpServer::closed`].
    Close(HttpConnId),
}

/// The readiness probes, to run on the blocking pool. `Send`.
pub struct ProbeJob {
    /// A copy of the readiness probes (each shares its check).
    probes: Vec<health::Probe>,
}

/// A readiness report made by a [`ProbeJob`]. `Send`.
pub struct ProbeDone {
    /// The report.
    report: Report,
}

impl ProbeJob {
    /// Run every readiness probe (blocking: one commits to LMDB).
    pub fn run(self) -> ProbeDone {
        ProbeDone {
            report: health::ready(&self.probes),
        }
    }
}

/// The HTTP server; lives on the control core.
pub struct HttpServer {
    /// What to serve and the bounds.
    state: HttpState,
    /// Open connections (for `max_connections`, and their state).
    conns: Slab<Conn>,
    /// Serial of the next admitted connection.
    next_serial: u64,
    /// Connections open now per client address (for `max_per_source`).
    open_by_source: HashMap<IpAddr, usize>,
    /// The last readiness report and when it was made.
    ready_cached: Option<(Millis, Report)>,
    /// The readiness probe job's state.
    probe: ProbeState,
    /// What the reactor has to do.
    events: VecDeque<HttpEvent>,
}

/// One connection.
struct Conn {
    /// Its id's serial.
    serial: u64,
    /// Client address (counted in `open_by_source`).
    source: Option<IpAddr>,
    /// The client's end of the stream was seen (EOF or a read error).
    eof: bool,
    /// Where the exchange is.
    phase: Phase,
}

enum Phase {
    /// Reading the request head (at most `max_head_bytes`) until `deadline`.
    Head { buf: Vec<u8>, deadline: Millis },
    /// A well-formed request waiting for the readiness report.
    Probe { route: Route, head_only: bool },
    /// Writing the response (`out[sent..]` left) until `deadline`.
    Write {
        out: Vec<u8>,
        sent: usize,
        deadline: Millis,
    },
    /// Response written and write side shut: discarding input (at most `left` bytes) until
    /// EOF or `deadline`.
    Linger { left: usize, deadline: Millis },
    /// Finished: the socket is to be closed.
    Done,
}

/// The readiness probe job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProbeState {
    /// None wanted.
    Idle,
    /// Wanted: [`HttpServer::poll_probe`] hands it out.
    Wanted,
    /// Running on the pool.
    Running,
}

impl HttpServer {
    pub fn new(state: HttpState) -> HttpServer {
        HttpServer {
            state,
            conns: Slab::new(),
            next_serial: 0,
            open_by_source: HashMap::new(),
            ready_cached: None,
            probe: ProbeState::Idle,
            events: VecDeque::new(),
        }
    }

    /// What is served.
    pub fn state(&self) -> &HttpState {
        &self.state
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.conns.len()
    }

    /// A connection was accepted from `source`: its id if admitted (it counts against
    /// `max_connections` and `max_per_source` until [`Self::closed`]), `None` to close it at
    /// once without an answer.
    pub fn admit(&mut self, source: Option<IpAddr>, now: Millis) -> Option<HttpConnId> {
        if self.conns.len() >= self.state.limits.max_connections {
            return None;
        }
        if let Some(ip) = source {
            let n = self.open_by_source.entry(ip).or_insert(0);
            if *n >= self.state.limits.max_per_source {
                if *n == 0 {
                    self.open_by_source.remove(&ip);
                }
                return None;
            }
            *n += 1;
        }
        let serial = self.next_serial;
        self.next_serial += 1;
        let deadline = now.saturating_add(ms(self.state.limits.head_timeout));
        let key = self.conns.insert(Conn {
            serial,
            source,
            eof: false,
            phase: Phase::Head {
                buf: Vec::new(),
                deadline,
            },
        });
        Some(HttpConnId { key, serial })
    }

    /// Bytes from the client.
    pub fn handle_input(&mut self, id: HttpConnId, bytes: &[u8], now: Millis) {
        let max = self.state.limits.max_head_bytes;
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        match &mut conn.phase {
            Phase::Head { buf, .. } => {
                let room = max.saturating_sub(buf.len());
                buf.extend_from_slice(bytes.get(..room.min(bytes.len())).unwrap_or_default());
                let parsed = parse_head(buf);
                let full = buf.len() >= max;
                match parsed {
                    Ok(Some(head)) => self.respond(id, &head, now),
                    Ok(None) if !full => {}
                    Ok(None) | Err(HeadError::TooLarge) => {
                        self.answer(id, Response::text(431, "request head too large\n"), now)
                    }
                    Err(HeadError::Malformed) => {
                        self.answer(id, Response::text(400, "malformed request\n"), now)
                    }
                }
            }
            Phase::Linger { left, .. } => {
                *left = left.saturating_sub(bytes.len());
                if *left == 0 {
                    self.finish(id);
                }
            }
            // Not reading now: what comes is not needed.
            Phase::Probe { .. } | Phase::Write { .. } | Phase::Done => {}
        }
    }

    /// The client's end of the stream: EOF, or a read error.
    pub fn handle_eof(&mut self, id: HttpConnId, now: Millis) {
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        conn.eof = true;
        match &conn.phase {
            // Closed before sending anything: nothing to answer.
            Phase::Head { buf, .. } if buf.is_empty() => self.finish(id),
            // A head cut short.
            Phase::Head { .. } => self.answer(id, Response::text(400, "malformed request\n"), now),
            Phase::Linger { .. } => self.finish(id),
            // A client may half-close after its request: it still gets the answer.
            Phase::Probe { .. } | Phase::Write { .. } | Phase::Done => {}
        }
    }

    /// Response bytes not yet written (empty when there are none).
    pub fn transmit(&self, id: HttpConnId) -> &[u8] {
        match self.conn(id).map(|c| &c.phase) {
            Some(Phase::Write { out, sent, .. }) => out.get(*sent..).unwrap_or_default(),
            _ => &[],
        }
    }

    /// `n` bytes of [`Self::transmit`] were written.
    pub fn advance_transmit(&mut self, id: HttpConnId, n: usize, now: Millis) {
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        let eof = conn.eof;
        let Phase::Write { out, sent, .. } = &mut conn.phase else {
            return;
        };
        *sent = sent.saturating_add(n).min(out.len());
        if *sent < out.len() {
            return;
        }
        if eof {
            // Everything the client sent was read: nothing to linger for.
            self.finish(id);
        } else {
            conn.phase = Phase::Linger {
                left: LINGER_BYTES,
                deadline: now.saturating_add(LINGER_MS),
            };
            self.events.push_back(HttpEvent::ShutdownWrite(id));
        }
    }

    /// Whether the server wants the connection's input (reading the head, or discarding
    /// leftovers before the close).
    pub fn wants_read(&self, id: HttpConnId) -> bool {
        self.conn(id)
            .is_some_and(|c| !c.eof && matches!(c.phase, Phase::Head { .. } | Phase::Linger { .. }))
    }

    /// Whether the connection is finished (close it); true for an id that names nothing.
    pub fn is_done(&self, id: HttpConnId) -> bool {
        self.conn(id).is_none_or(|c| matches!(c.phase, Phase::Done))
    }

    /// What the reactor has to do next.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<HttpEvent> {
        self.events.pop_front()
    }

    /// The earliest deadline of any connection (head, write, linger).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Millis> {
        self.conns.iter().filter_map(|(_, c)| c.deadline()).min()
    }

    /// Time passed: a head not received in time is 408, a response not taken in time drops
    /// the connection, a linger ends.
    pub fn handle_timeout(&mut self, now: Millis) {
        let expired: Vec<HttpConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.deadline().is_some_and(|d| d <= now))
            .map(|(key, c)| HttpConnId {
                key,
                serial: c.serial,
            })
            .collect();
        for id in expired {
            match self.conn(id).map(|c| &c.phase) {
                Some(Phase::Head { .. }) => {
                    let r = Response::text(408, "request head not received in time\n");
                    self.answer(id, r, now);
                }
                Some(Phase::Write { .. } | Phase::Linger { .. }) => self.finish(id),
                _ => {}
            }
        }
    }

    /// The reactor closed the socket (after `Close`, or on an I/O error): its slot is free.
    pub fn closed(&mut self, id: HttpConnId) {
        if self.conn(id).is_none() {
            return;
        }
        let conn = self.conns.remove(id.key);
        if let Some(ip) = conn.source {
            if let Some(n) = self.open_by_source.get_mut(&ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.open_by_source.remove(&ip);
                }
            }
        }
    }

    /// The readiness probes to run off this thread, when a request waits for them (one job
    /// at a time).
    #[must_use]
    pub fn poll_probe(&mut self) -> Option<ProbeJob> {
        if self.probe != ProbeState::Wanted {
            return None;
        }
        self.probe = ProbeState::Running;
        Some(ProbeJob {
            probes: self.state.ready_probes.clone(),
        })
    }

    /// The probe job ran: cache its report and answer everyone waiting for it.
    pub fn handle_probe_done(&mut self, done: ProbeDone, now: Millis) {
        self.probe = ProbeState::Idle;
        let waiting: Vec<(HttpConnId, Route, bool)> = self
            .conns
            .iter()
            .filter_map(|(key, c)| match c.phase {
                Phase::Probe { route, head_only } => Some((
                    HttpConnId {
                        key,
                        serial: c.serial,
                    },
                    route,
                    head_only,
                )),
                _ => None,
            })
            .collect();
        for (id, route, head_only) in waiting {
            let mut response = match route {
                Route::Health => health_response(done.report.is_ok()),
                _ => Response::report(&done.report),
            };
            response.head_only = head_only;
            self.answer(id, response, now);
        }
        self.ready_cached = Some((now, done.report));
    }

    fn conn(&self, id: HttpConnId) -> Option<&Conn> {
        self.conns.get(id.key).filter(|c| c.serial == id.serial)
    }

    fn conn_mut(&mut self, id: HttpConnId) -> Option<&mut Conn> {
        self.conns.get_mut(id.key).filter(|c| c.serial == id.serial)
    }

    /// Route a well-formed request: answer it, or wait for the readiness report.
    fn respond(&mut self, id: HttpConnId, req: &RequestHead, now: Millis) {
        let path = req.target.split('?').next().unwrap_or_default();
        let route = match path {
            p if self.state.metrics_enabled && p == self.state.metrics_path => Route::Metrics,
            "/health" => Route::Health,
            "/health/live" => Route::Live,
            "/health/ready" => Route::Ready,
            _ => return self.answer(id, Response::text(404, "not found\n"), now),
        };
        let head_only = match req.method.as_str() {
            "GET" => false,
            "HEAD" => true,
            _ => {
                let mut r = Response::text(405, "method not allowed\n");
                r.allow = true;
                return self.answer(id, r, now);
            }
        };
        let response = match route {
            Route::Metrics => Some(Response {
                status: 200,
                content_type: METRICS_CONTENT_TYPE,
                body: self.state.registry.render().into_bytes(),
                allow: false,
                head_only: false,
            }),
            Route::Live => Some(Response::report(&self.live())),
            Route::Ready => self.fresh_ready(now).map(Response::report),
            Route::Health if !self.live().is_ok() => Some(health_response(false)),
            Route::Health => self.fresh_ready(now).map(|r| health_response(r.is_ok())),
        };
        match response {
            Some(mut r) => {
                r.head_only = head_only;
                self.answer(id, r, now);
            }
            None => {
                if let Some(conn) = self.conn_mut(id) {
                    conn.phase = Phase::Probe { route, head_only };
                }
                if self.probe == ProbeState::Idle {
                    self.probe = ProbeState::Wanted;
                }
            }
        }
    }

    /// The cached readiness report, if younger than `ready_cache`.
    fn fresh_ready(&self, now: Millis) -> Option<&Report> {
        let (at, report) = self.ready_cached.as_ref()?;
        (now.saturating_sub(*at) < ms(self.state.limits.ready_cache)).then_some(report)
    }

    fn live(&self) -> Report {
        health::live(
            &self.state.registry,
            self.state.limits.heartbeat_max_age,
            &self.state.live_probes,
        )
    }

    /// Start writing `response` on `id`.
    fn answer(&mut self, id: HttpConnId, response: Response, now: Millis) {
        let deadline = now.saturating_add(ms(self.state.limits.write_timeout));
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        conn.phase = Phase::Write {
            out: response.encode(),
            sent: 0,
            deadline,
        };
        self.events.push_back(HttpEvent::Transmit(id));
    }

    /// The connection is finished: ask for the close.
    fn finish(&mut self, id: HttpConnId) {
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        if !matches!(conn.phase, Phase::Done) {
            conn.phase = Phase::Done;
            self.events.push_back(HttpEvent::Close(id));
        }
    }
}

impl Conn {
    /// When the current phase runs out.
    fn deadline(&self) -> Option<Millis> {
        match self.phase {
            Phase::Head { deadline, .. }
            | Phase::Write { deadline, .. }
            | Phase::Linger { deadline, .. } => Some(deadline),
            Phase::Probe { .. } | Phase::Done => None,
        }
    }
}

/// A duration in milliseconds (saturating).
fn ms(d: Duration) -> Millis {
    Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
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
    /// More than `max_head_bytes`, or too many header lines.
    TooLarge,
    /// Not an HTTP/1.x request head (including a head cut short by EOF).
    Malformed,
}

/// Header lines accepted in a head.
const MAX_HEADERS: usize = 32;

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

/// `/health`: a bare status, 200 when live and ready, else 503.
fn health_response(ok: bool) -> Response {
    let body = if ok {
        &br#"{"status":"ok"}"#[..]
    } else {
        &br#"{"status":"fail"}"#[..]
    };
    Response::json(if ok { 200 } else { 503 }, body.to_vec())
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
