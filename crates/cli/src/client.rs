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

/// Query-string parameters; `None` values are left out.
pub type Query<'a> = &'a [(&'a str, Option<String>)];

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

    /// Sends one request to `/api/v1/<path>`. A 204 answer is `Value::Null`.
    pub async fn send(
        &self,
        method: Method,
        path: &[&str],
        query: Query<'_>,
        body: Option<&Value>,
    ) -> CliResult<Value> {
        let url = self.url(path, query)?;
        let mut req = self.http.request(method, url);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
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
    /// requests it has no overall time limit, only one on silence.
    pub async fn stream(&self, path: &[&str]) -> CliResult<EventStream> {
        let url = self.url(path, &[])?;
        let http = reqwest::Client::builder()
            .read_timeout(STREAM_IDLE)
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("prism-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::usage(format!("cannot set up the HTTP client: {e}")))?;
        let mut req = http.get(url).header(reqwest::header::ACCEPT, "text/event-stream");
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.map_err(|e| self.stream_error(e))?;
        let status = resp.status();
        if !status.is_success() {
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .map(str::to_owned);
            let bytes = resp.bytes().await.map_err(|e| self.transport_error(e))?;
            return Err(self.api_error(status, &bytes, location));
        }
        Ok(EventStream {
            body: resp.bytes_stream().map(|chunk| chunk.map(|b| b.to_vec())).boxed(),
            parser: SseParser::new(),
            server: self.server(),
        })
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

/// The events of a `text/event-stream` answer, as they arrive.
pub struct EventStream {
    body: BoxStream<'static, reqwest::Result<Vec<u8>>>,
    parser: SseParser,
    server: String,
}

impl EventStream {
    /// The next event; `None` when the server has closed the stream.
    pub async fn next(&mut self) -> CliResult<Option<SseEvent>> {
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
                        url: self.server.clone(),
                        detail,
                    });
                }
                None => return Ok(None),
            }
        }
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

/// A request body as JSON (the API's request types, or a user's own JSON).
fn encode<B: Serialize + ?Sized>(body: &B) -> CliResult<Value> {
    serde_json::to_value(body).map_err(|e| CliError::unexpected(format!("cannot encode the request: {e}")))
}
