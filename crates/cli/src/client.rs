//! The HTTP client for Prism's REST API: JSON in and out, `Bearer` token
//! authentication, and the server's `{"error", "code", "field"}` bodies
//! turned into `CliError`s.

use std::time::Duration;

use futures::stream::BoxStream;
use futures::StreamExt;
use prism_api::error::ErrorBody;
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde_json::Value;

use crate::error::{CliError, CliResult};
use crate::sse::{SseEvent, SseParser};

const TIMEOUT: Duration = Duration::from_secs(30);
/// How long an event stream may stay silent: the server sends a keep-alive
/// comment every 15 s, so a minute without a byte means the link is gone.
const STREAM_IDLE: Duration = Duration::from_secs(60);
/// How often in a row a broken event stream is opened again, and the wait
/// before the first try (doubled each time: 0.25 s ... 4 s). When an
/// instance behind the load balancer dies, another takes its streams over
/// within a few seconds.
const RESUME_ATTEMPTS: u32 = 5;
const RESUME_FIRST_WAIT: Duration = Duration::from_millis(250);

/// Query-string parameters; `None` values are left out.
pub type Query<'a> = &'a [(&'a str, Option<String>)];

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
}

impl Client {
    /// A client for the server at `base` (http:// or https://).
    pub fn new(base: &str, token: Option<String>) -> CliResult<Self> {
        let base = parse_server_url(base)?;
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("prism-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::usage(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Client { http, base, token })
    }

    /// The server's base URL as given (without a trailing slash).
    pub fn server(&self) -> String {
        crate::config::normalise_url(self.base.as_str())
    }

    pub async fn get(&self, path: &[&str], query: Query<'_>) -> CliResult<Value> {
        self.send(Method::GET, path, query, None).await
    }

    pub async fn post<B: Serialize + ?Sized>(&self, path: &[&str], body: &B) -> CliResult<Value> {
        self.send(Method::POST, path, &[], Some(&encode(body)?)).await
    }

    pub async fn put<B: Serialize + ?Sized>(&self, path: &[&str], body: &B) -> CliResult<Value> {
        self.send(Method::PUT, path, &[], Some(&encode(body)?)).await
    }

    pub async fn patch<B: Serialize + ?Sized>(&self, path: &[&str], body: &B) -> CliResult<Value> {
        self.send(Method::PATCH, path, &[], Some(&encode(body)?)).await
    }

    pub async fn delete(&self, path: &[&str], query: Query<'_>) -> CliResult<Value> {
        self.send(Method::DELETE, path, query, None).await
    }

    /// A POST the server makes idempotent (release creation, release
    /// actions, build and deploy start, approvals): sent with a fresh
    /// `Idempotency-Key` and sent again with the same key when the connection
    /// fails or a load balancer answers 502/503/504, so a request that reached
    /// an instance which died before answering is made once, not twice.
    pub async fn post_once<B: Serialize + ?Sized>(&self, path: &[&str], body: &B) -> CliResult<Value> {
        let body = encode(body)?;
        let key = new_idempotency_key();
        let mut wait = Duration::from_millis(250);
        let mut attempt = 1;
        loop {
            let r = self.send_keyed(Method::POST, path, &[], Some(&body), Some(&key)).await;
            let again = match &r {
                Err(CliError::Connect { .. }) => true,
                Err(CliError::Api { status, .. }) => matches!(status, 502..=504),
                Ok(_) | Err(_) => false,
            };
            if !again || attempt == SEND_ATTEMPTS {
                return r;
            }
            tokio::time::sleep(wait).await;
            wait *= 2;
            attempt += 1;
        }
    }

    /// Sends one request to `/api/v1/<path>`. A 204 answer is `Value::Null`.
    pub async fn send(
        &self,
        method: Method,
        path: &[&str],
        query: Query<'_>,
        body: Option<&Value>,
    ) -> CliResult<Value> {
        self.send_keyed(method, path, query, body, None).await
    }

    async fn send_keyed(
        &self,
        method: Method,
        path: &[&str],
        query: Query<'_>,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> CliResult<Value> {
        let url = self.url(path, query)?;
        let mut req = self.http.request(method, url);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(key) = idempotency_key {
            req = req.header("Idempotency-Key", key);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.map_err(|e| self.transport_error(e))?;
        let status = resp.status();
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        let bytes = resp.bytes().await.map_err(|e| self.transport_error(e))?;
        if status.is_success() {
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&bytes).map_err(|e| {
                CliError::unexpected(format!(
                    "the server at {} did not answer with JSON ({e})",
                    self.server()
                ))
            });
        }
        Err(self.api_error(status, &bytes, location))
    }

    /// Opens a Server-Sent Events stream at `/api/v1/<path>`. Unlike other
    /// requests it has no overall time limit, only one on silence. Once open,
    /// it reconnects by itself when it breaks off ([`EventStream::next`]).
    pub async fn stream(&self, path: &[&str]) -> CliResult<EventStream> {
        let url = self.url(path, &[])?;
        let http = reqwest::Client::builder()
            .read_timeout(STREAM_IDLE)
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("prism-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::usage(format!("cannot set up the HTTP client: {e}")))?;
        let mut stream = EventStream {
            client: self.clone(),
            http,
            url,
            body: futures::stream::empty().boxed(),
            parser: SseParser::new(),
            last_id: None,
            ended: false,
            failures: 0,
            connected_at: std::time::Instant::now(),
        };
        // The first connection is not retried: a server that cannot be
        // reached at all is reported at once.
        stream.body = stream.connect().await?;
        Ok(stream)
    }

    fn url(&self, path: &[&str], query: Query<'_>) -> CliResult<Url> {
        if let Some(bad) = path.iter().find(|s| s.is_empty() || **s == "." || **s == "..") {
            return Err(CliError::usage(format!("{bad:?} is not a valid name")));
        }
        let mut url = self.base.clone();
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|()| CliError::usage(format!("{} cannot be a server URL", self.base)))?;
            segments.pop_if_empty().extend(["api", "v1"]).extend(path);
        }
        let params: Vec<(&str, &String)> = query.iter().filter_map(|(k, v)| v.as_ref().map(|v| (*k, v))).collect();
        if !params.is_empty() {
            url.query_pairs_mut().extend_pairs(params);
        }
        Ok(url)
    }

    fn api_error(&self, status: StatusCode, bytes: &[u8], location: Option<String>) -> CliError {
        if let Ok(body) = serde_json::from_slice::<ErrorBody>(bytes) {
            let mut message = body.error;
            if status == StatusCode::UNAUTHORIZED && self.token.is_some() {
                message.push_str(&format!("; run `prism login {}` to log in again", self.server()));
            }
            return CliError::Api {
                status: status.as_u16(),
                message,
                field: body.field,
            };
        }
        let mut message = format!("the server at {} answered HTTP {status}", self.server());
        if let Some(location) = location.filter(|_| status.is_redirection()) {
            message.push_str(&format!(" (redirect to {location}; use that URL)"));
        }
        CliError::Api {
            status: status.as_u16(),
            message,
            field: None,
        }
    }

    fn stream_error(&self, e: reqwest::Error) -> CliError {
        if e.is_timeout() {
            return CliError::Connect {
                url: self.server(),
                detail: format!("nothing heard for {} s", STREAM_IDLE.as_secs()),
            };
        }
        self.transport_error(e)
    }

    fn transport_error(&self, e: reqwest::Error) -> CliError {
        let detail = if e.is_timeout() {
            format!("no answer within {} s", TIMEOUT.as_secs())
        } else {
            root_cause(&e)
        };
        CliError::Connect {
            url: self.server(),
            detail,
        }
    }
}

type Body = BoxStream<'static, reqwest::Result<Vec<u8>>>;

/// The events of a `text/event-stream` answer, as they arrive, across
/// reconnections: like a browser's EventSource, the stream is opened again
/// when it breaks off before its `end` event, sending `Last-Event-ID` with
/// the last id it passed on, so the server (any instance) resumes after it
/// and no event comes twice.
pub struct EventStream {
    client: Client,
    http: reqwest::Client,
    url: Url,
    body: Body,
    parser: SseParser,
    /// The id of the last event passed on; it carries over a reconnection.
    last_id: Option<String>,
    /// Whether the `end` event came: a close after it is the end.
    ended: bool,
    /// Reconnections since the stream last moved on (an event with a new id)
    /// or a connection held for a while.
    failures: u32,
    /// When the current connection was opened.
    connected_at: std::time::Instant,
}

/// A connection that stayed up this long was not a failed try: a deploy
/// waiting hours for its window may be reconnected any number of times.
const STEADY: Duration = Duration::from_secs(60);

impl EventStream {
    /// The next event; `None` when the server has closed the stream (after
    /// its `end`, or for good). A broken connection is opened again, up to
    /// RESUME_ATTEMPTS times in a row, before it is an error.
    pub async fn next(&mut self) -> CliResult<Option<SseEvent>> {
        loop {
            let lost = match self.read().await {
                Ok(Some(event)) => return Ok(Some(self.passed_on(event))),
                Ok(None) if self.ended => return Ok(None),
                // Closed before its end: the instance went away, or is going.
                Ok(None) => None,
                Err(e) => Some(e),
            };
            if self.connected_at.elapsed() >= STEADY {
                self.failures = 0;
            }
            if !self.resume(lost).await? {
                return Ok(None);
            }
        }
    }

    /// The next event of the current connection; `None` when it was closed.
    async fn read(&mut self) -> CliResult<Option<SseEvent>> {
        loop {
            if let Some(event) = self.parser.next_event() {
                return Ok(Some(event));
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.parser.feed(&chunk),
                Some(Err(e)) => {
                    let detail = if e.is_timeout() {
                        format!("the event stream was silent for {} s", STREAM_IDLE.as_secs())
                    } else {
                        format!("the event stream broke off: {}", root_cause(&e))
                    };
                    return Err(CliError::Connect {
                        url: self.client.server(),
                        detail,
                    });
                }
                None => return Ok(None),
            }
        }
    }

    /// Notes where the stream is before an event goes to the caller.
    fn passed_on(&mut self, mut event: SseEvent) -> SseEvent {
        // A new connection's parser has seen no id yet: the last one holds.
        if event.id.is_none() {
            event.id = self.last_id.clone();
        }
        if event.id != self.last_id {
            self.last_id = event.id.clone();
            self.failures = 0;
        }
        self.ended = event.event == "end";
        event
    }

    /// Opens the stream again after it broke off (`lost`: the error, `None`
    /// when it was closed before its end), after a growing wait. `false`
    /// when a stream that kept being closed is given up; the error when one
    /// that kept breaking is.
    async fn resume(&mut self, mut lost: Option<CliError>) -> CliResult<bool> {
        loop {
            if self.failures >= RESUME_ATTEMPTS {
                return lost.map_or(Ok(false), Err);
            }
            let wait = RESUME_FIRST_WAIT * 2u32.pow(self.failures);
            self.failures += 1;
            let why = match &lost {
                None => "the server closed the event stream before its end".to_owned(),
                Some(CliError::Connect { detail, .. }) => detail.clone(),
                Some(e) => e.to_string(),
            };
            eprintln!(
                "== {why}; reconnecting in {} ms (attempt {} of {RESUME_ATTEMPTS})",
                wait.as_millis(),
                self.failures
            );
            tokio::time::sleep(wait).await;
            match self.connect().await {
                Ok(body) => {
                    self.body = body;
                    self.connected_at = std::time::Instant::now();
                    // Half an event from the broken connection is dropped:
                    // the server sends it again, whole.
                    self.parser = SseParser::new();
                    return Ok(true);
                }
                Err(e) if worth_retrying(&e) => lost = Some(e),
                Err(e) => return Err(e),
            }
        }
    }

    /// One request for the stream, from after the last event passed on.
    async fn connect(&self) -> CliResult<Body> {
        let mut req = self
            .http
            .get(self.url.clone())
            .header(reqwest::header::ACCEPT, "text/event-stream");
        if let Some(token) = &self.client.token {
            req = req.bearer_auth(token);
        }
        if let Some(id) = &self.last_id {
            req = req.header("Last-Event-ID", id);
        }
        let resp = req.send().await.map_err(|e| self.client.stream_error(e))?;
        let status = resp.status();
        if !status.is_success() {
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .map(str::to_owned);
            let bytes = resp.bytes().await.map_err(|e| self.client.transport_error(e))?;
            return Err(self.client.api_error(status, &bytes, location));
        }
        Ok(resp.bytes_stream().map(|chunk| chunk.map(|b| b.to_vec())).boxed())
    }
}

/// Whether opening a stream again may work: the server could not be
/// reached, a load balancer had no instance for it at that moment, or the
/// limit of open streams was hit before the server noticed the broken one.
fn worth_retrying(e: &CliError) -> bool {
    match e {
        CliError::Connect { .. } => true,
        CliError::Api { status, .. } => matches!(status, 429 | 502 | 503 | 504),
        CliError::Usage(_) => false,
    }
}

/// Checks and parses a server URL given on the command line.
pub fn parse_server_url(raw: &str) -> CliResult<Url> {
    let trimmed = crate::config::normalise_url(raw);
    let url = Url::parse(&trimmed).map_err(|e| {
        CliError::usage(format!(
            "{raw:?} is not a valid URL ({e}); give e.g. https://prism.example.com"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(CliError::usage(format!("{raw:?} is not an http:// or https:// URL")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(CliError::usage(format!(
            "{raw:?}: a server URL takes no query or fragment"
        )));
    }
    Ok(url)
}

/// The innermost cause: "Connection refused (os error 111)" rather than
/// "error sending request for url (...)".
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

impl Client {
    /// `GET /api/v1/<path>` for an answer that is text, not JSON (nginx's
    /// configuration): the body as it came. Errors are the server's JSON
    /// error bodies, as for [`Client::get`].
    pub async fn get_text(&self, path: &[&str], query: Query<'_>) -> CliResult<String> {
        let url = self.url(path, query)?;
        let mut req = self.http.get(url);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.map_err(|e| self.transport_error(e))?;
        let status = resp.status();
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        let bytes = resp.bytes().await.map_err(|e| self.transport_error(e))?;
        if !status.is_success() {
            return Err(self.api_error(status, &bytes, location));
        }
        String::from_utf8(bytes.to_vec()).map_err(|_| {
            CliError::unexpected(format!(
                "the server at {} answered with text that is not UTF-8",
                self.server()
            ))
        })
    }
}

/// Tries of a [`Client::post_once`] request (about 2 s of retrying in all).
const SEND_ATTEMPTS: u32 = 4;

/// A key no other request of this user is likely to have: 128 bits from the
/// standard library's per-process random hash keys (OS randomness), the
/// time and a counter. It need not be secret, only unique to its caller.
fn new_idempotency_key() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let half = |salt: u64| {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(salt);
        h.write_u64(n);
        h.write_u128(nanos);
        h.write_u32(std::process::id());
        h.finish()
    };
    format!("prism-cli-{:016x}{:016x}", half(1), half(2))
}

/// A request body as JSON (the API's request types, or a user's own JSON).
fn encode<B: Serialize + ?Sized>(body: &B) -> CliResult<Value> {
    serde_json::to_value(body).map_err(|e| CliError::unexpected(format!("cannot encode the request: {e}")))
}
