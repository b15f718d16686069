//! The few calls of Jenkins' REST API the executor needs, and nothing about build steps.
//!
//! Every URL the client calls is derived from the configured base URL: URLs that Jenkins
//! reports (the queue item's `Location`, the build's `url`) are used only when they lie
//! under that base, so the credentials never go to another host because of a
//! misconfigured Jenkins root URL or a proxy.

use std::fmt;
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use url::Url;

use super::{ApiToken, JenkinsConfig, JenkinsError};

type Result<T, E = JenkinsError> = std::result::Result<T, E>;

/// Talks to one Jenkins job.
pub struct JenkinsClient {
    http: reqwest::Client,
    /// Always ends with `/`.
    base: Url,
    /// The job path as configured (`team/prism-build`), for messages.
    job: String,
    /// `{base}job/team/job/prism-build/`
    job_url: Url,
    username: String,
    token: ApiToken,
    timeout: Duration,
}

impl fmt::Debug for JenkinsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JenkinsClient")
            .field("job_url", &self.job_url.as_str())
            .field("username", &self.username)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// The CSRF crumb and the session cookie it belongs to. Jenkins ties a crumb to the web
/// session, so both are sent together; the cookie also keeps Jenkins from opening a new
/// session for every request.
#[derive(Clone, Default)]
pub struct Session {
    crumb: Option<(HeaderName, HeaderValue)>,
    cookie: Option<HeaderValue>,
}

impl fmt::Debug for Session {
    // Both are credentials for as long as the session lives.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("crumb", &self.crumb.as_ref().map(|(name, _)| name))
            .field("cookie", &self.cookie.as_ref().map(|_| "***"))
            .finish()
    }
}

/// A build waiting in Jenkins' queue.
#[derive(Debug, Clone)]
pub struct QueueRef {
    pub id: u64,
    pub url: Url,
}

#[derive(Debug, Clone, Deserialize)]
pub struct QueueItem {
    /// Set once the item left the queue because someone cancelled it.
    #[serde(default)]
    pub cancelled: bool,
    /// Why the item is still waiting ("Waiting for next available executor").
    #[serde(default)]
    pub why: Option<String>,
    /// Set once the item left the queue and became a build.
    #[serde(default)]
    pub executable: Option<Executable>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Executable {
    pub number: u64,
    pub url: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BuildInfo {
    pub building: bool,
    /// `SUCCESS`, `UNSTABLE`, `FAILURE`, `NOT_BUILT`, `ABORTED`; null while building.
    pub result: Option<String>,
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    pub relative_path: String,
}

/// One answer of the progressive console.
#[derive(Debug)]
pub struct ConsoleChunk {
    pub bytes: Vec<u8>,
    /// Where the next request starts (`X-Text-Size`).
    pub next_offset: u64,
    /// `X-More-Data: true`: the build is still writing.
    pub more: bool,
}

impl JenkinsClient {
    pub fn new(config: &JenkinsConfig) -> Result<Self> {
        let invalid = |m: String| Err(JenkinsError::Config(m));
        let mut base = match Url::parse(&config.base_url) {
            Ok(u) => u,
            Err(e) => return invalid(format!("base URL {:?}: {e}", config.base_url)),
        };
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return invalid(format!("base URL {:?} must be an http or https URL", config.base_url));
        }
        if config.guard.check_url(&base).is_err() {
            return invalid(format!(
                "base URL {:?}: {}",
                config.base_url,
                prism_netguard::UNREACHABLE
            ));
        }
        if !base.username().is_empty() || base.password().is_some() {
            // It would end up in error messages; the token has its own field.
            return invalid("the base URL must not contain credentials: use username and api_token".into());
        }
        if base.query().is_some() || base.fragment().is_some() {
            return invalid(format!(
                "base URL {:?} must not have a query or fragment",
                config.base_url
            ));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let job = config.job.trim_matches('/');
        if job.is_empty() || job.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
            return invalid(format!(
                "job path {:?} must be a job name or a folder path such as team/prism-build",
                config.job
            ));
        }
        let mut job_url = base.clone();
        {
            let mut segments = job_url
                .path_segments_mut()
                .map_err(|_| JenkinsError::Config("base URL cannot have a path".into()))?;
            segments.pop_if_empty();
            // A folder path a/b is the URL /job/a/job/b/.
            for name in job.split('/') {
                segments.push("job").push(name);
            }
            segments.push("");
        }
        let http = reqwest::Client::builder()
            .connect_timeout(config.request_timeout)
            // Jenkins answers stop and cancelItem with a redirect to a page we do not need;
            // and a redirect elsewhere (http to https) should be reported, not followed
            // with the credentials.
            .redirect(reqwest::redirect::Policy::none())
            // Names resolve only to addresses the policy allows.
            .dns_resolver(config.guard.resolver())
            .user_agent(concat!("prism-builder/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| JenkinsError::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            base,
            job: job.to_owned(),
            job_url,
            username: config.username.clone(),
            token: config.api_token.clone(),
            timeout: config.request_timeout,
        })
    }

    pub fn job(&self) -> &str {
        &self.job
    }

    /// `GET {base}crumbIssuer/api/json`. A 404 means CSRF protection is off.
    pub async fn session(&self) -> Result<Session> {
        let what = "fetching the CSRF crumb";
        let url = self.url(&self.base, "crumbIssuer/api/json")?;
        let resp = self.send(what, self.request(Method::GET, url, None)).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(Session::default());
        }
        let resp = self.expect_success(what, resp).await?;
        // Keep every cookie Jenkins set (JSESSIONID.<hash>=...): name=value only.
        let cookies: Vec<&str> = resp
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .map(str::trim)
            .filter(|v| v.contains('='))
            .collect();
        let cookie = match cookies.is_empty() {
            true => None,
            false => {
                Some(HeaderValue::from_str(&cookies.join("; ")).map_err(|_| protocol(what, "unusable Set-Cookie"))?)
            }
        };
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Crumb {
            crumb: String,
            crumb_request_field: String,
        }
        let crumb: Crumb = json(what, resp).await?;
        let name = HeaderName::from_bytes(crumb.crumb_request_field.as_bytes())
            .map_err(|_| protocol(what, "invalid crumbRequestField"))?;
        let mut value = HeaderValue::from_str(&crumb.crumb).map_err(|_| protocol(what, "invalid crumb"))?;
        value.set_sensitive(true);
        Ok(Session {
            crumb: Some((name, value)),
            cookie,
        })
    }

    /// `POST {job}buildWithParameters`; Jenkins answers `201 Created` with the queue item
    /// in `Location`.
    pub async fn trigger(&self, session: &mut Session, params: &[(String, String)]) -> Result<QueueRef> {
        let what = "triggering the build";
        let url = self.url(&self.job_url, "buildWithParameters")?;
        let resp = self.post(what, session, url.clone(), Some(params)).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(JenkinsError::JobNotFound {
                job: self.job.clone(),
                url: self.job_url.to_string(),
            });
        }
        let resp = self.expect_success(what, resp).await?;
        if resp.status() != StatusCode::CREATED {
            return Err(protocol(what, format!("expected 201 Created, got {}", resp.status())));
        }
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| protocol(what, "201 Created without a Location header"))?;
        let location = self
            .base
            .join(location)
            .map_err(|_| protocol(what, format!("invalid Location {location:?}")))?;
        // .../queue/item/{id}/
        let id = location
            .path_segments()
            .and_then(|s| {
                let s: Vec<&str> = s.filter(|s| !s.is_empty()).collect();
                match s.as_slice() {
                    [.., "queue", "item", id] => id.parse::<u64>().ok(),
                    _ => None,
                }
            })
            .ok_or_else(|| protocol(what, format!("Location {location} is not a queue item")))?;
        // Relative URLs are joined to this one, so it must end with '/'.
        let url = match self.under_base(location.as_str()) {
            Some(u) if u.path().ends_with('/') => u,
            _ => self.url(&self.base, &format!("queue/item/{id}/"))?,
        };
        Ok(QueueRef { id, url })
    }

    /// `GET {queue item}api/json`.
    pub async fn queue_item(&self, session: &Session, item: &QueueRef) -> Result<QueueItem> {
        let what = "polling the queue item";
        let url = self.url(&item.url, "api/json?tree=cancelled,why,executable[number,url]")?;
        let resp = self.send(what, self.request(Method::GET, url, Some(session))).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            // Jenkins forgets items a few minutes after they left the queue.
            return Err(protocol(what, format!("queue item {} no longer exists", item.id)));
        }
        json(what, self.expect_success(what, resp).await?).await
    }

    /// `POST {base}queue/cancelItem?id=N`. Jenkins answers 204 (older versions: a
    /// redirect to the previous page, whatever happened); 404 means the item already left
    /// the queue, too late to cancel (JENKINS-14813). Either way the caller reads the item
    /// again to learn whether it became a build.
    pub async fn cancel_queue_item(&self, session: &mut Session, item: &QueueRef) -> Result<()> {
        let what = "cancelling the queue item";
        let url = self.url(&self.base, &format!("queue/cancelItem?id={}", item.id))?;
        let resp = self.post(what, session, url, None).await?;
        if resp.status() == StatusCode::NOT_FOUND || resp.status().is_redirection() {
            return Ok(());
        }
        self.expect_success(what, resp).await.map(drop)
    }

    /// The API URL of build `number` of the job: Jenkins' own `url` when it lies under the
    /// base URL, else built from the base.
    pub fn build_url(&self, executable: &Executable) -> Result<Url> {
        match self.under_base(&executable.url) {
            Some(u) if u.path().ends_with('/') => Ok(u),
            _ => self.url(&self.job_url, &format!("{}/", executable.number)),
        }
    }

    /// `GET {build}logText/progressiveText?start=N`.
    pub async fn console(&self, session: &Session, build: &Url, start: u64) -> Result<ConsoleChunk> {
        let what = "reading the console";
        let url = self.url(build, &format!("logText/progressiveText?start={start}"))?;
        let resp = self.send(what, self.request(Method::GET, url, Some(session))).await?;
        let resp = self.expect_success(what, resp).await?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let more = header("X-More-Data").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let size = header("X-Text-Size");
        let bytes = resp.bytes().await.map_err(|e| http_error(what, &e))?.to_vec();
        let next_offset = match size {
            Some(s) => s
                .trim()
                .parse()
                .map_err(|_| protocol(what, format!("invalid X-Text-Size {s:?}")))?,
            None => start + bytes.len() as u64,
        };
        Ok(ConsoleChunk {
            bytes,
            next_offset,
            more,
        })
    }

    /// `GET {build}api/json`.
    pub async fn build_info(&self, session: &Session, build: &Url) -> Result<BuildInfo> {
        let what = "reading the build status";
        let url = self.url(build, "api/json?tree=building,result,artifacts[relativePath]")?;
        let resp = self.send(what, self.request(Method::GET, url, Some(session))).await?;
        json(what, self.expect_success(what, resp).await?).await
    }

    /// `POST {build}stop`: Jenkins aborts the build (asynchronously).
    pub async fn stop(&self, session: &mut Session, build: &Url) -> Result<()> {
        let what = "stopping the build";
        let url = self.url(build, "stop")?;
        let resp = self.post(what, session, url, None).await?;
        if resp.status().is_redirection() {
            return Ok(());
        }
        self.expect_success(what, resp).await.map(drop)
    }

    /// `GET {build}artifact/{relative path}` into `file`. The whole download has no time
    /// limit (artifacts can be large); each read must make progress within the request
    /// timeout.
    pub async fn download(&self, session: &Session, build: &Url, rel: &str, file: &mut tokio::fs::File) -> Result<u64> {
        let what = format!("downloading artifact {rel:?}");
        let mut url = build.clone();
        url.path_segments_mut()
            .map_err(|_| protocol(&what, "build URL cannot have a path"))?
            .pop_if_empty()
            .push("artifact")
            .extend(rel.split('/').filter(|s| !s.is_empty() && *s != "."));
        let rb = self.http.get(url).basic_auth(&self.username, Some(self.token.expose()));
        let rb = with_cookie(rb, session);
        let resp = tokio::time::timeout(self.timeout, rb.send())
            .await
            .map_err(|_| JenkinsError::Http {
                what: what.clone(),
                detail: format!("no answer within {:?}", self.timeout),
            })?
            .map_err(|e| http_error(&what, &e))?;
        let mut resp = self.expect_success(&what, resp).await?;
        let mut written = 0;
        loop {
            let chunk = tokio::time::timeout(self.timeout, resp.chunk())
                .await
                .map_err(|_| JenkinsError::Http {
                    what: what.clone(),
                    detail: format!("no data for {:?} in the middle of the download", self.timeout),
                })?
                .map_err(|e| http_error(&what, &e))?;
            let Some(chunk) = chunk else { break };
            file.write_all(&chunk)
                .await
                .map_err(|source| JenkinsError::ArtifactIo {
                    path: rel.into(),
                    source,
                })?;
            written += chunk.len() as u64;
        }
        file.flush().await.map_err(|source| JenkinsError::ArtifactIo {
            path: rel.into(),
            source,
        })?;
        Ok(written)
    }

    fn url(&self, base: &Url, rel: &str) -> Result<Url> {
        base.join(rel)
            .map_err(|e| JenkinsError::Config(format!("cannot build a URL from {base} and {rel:?}: {e}")))
    }

    fn under_base(&self, url: &str) -> Option<Url> {
        url.starts_with(self.base.as_str())
            .then(|| Url::parse(url).ok())
            .flatten()
    }

    /// An API request: basic auth, a per-request timeout, and the session cookie (with
    /// the crumb on POSTs) when there is a session.
    fn request(&self, method: Method, url: Url, session: Option<&Session>) -> RequestBuilder {
        let post = method == Method::POST;
        let mut rb = self
            .http
            .request(method, url)
            .basic_auth(&self.username, Some(self.token.expose()))
            .timeout(self.timeout);
        if let Some(s) = session {
            rb = with_cookie(rb, s);
            if let (true, Some((name, value))) = (post, &s.crumb) {
                rb = rb.header(name.clone(), value.clone());
            }
        }
        rb
    }

    async fn send(&self, what: &str, rb: RequestBuilder) -> Result<Response> {
        rb.send().await.map_err(|e| http_error(what, &e))
    }

    /// A POST with the crumb. If Jenkins refuses it with 403 while a crumb was sent, the
    /// session may have expired during a long build (the crumb dies with it): fetch a new
    /// crumb once and retry. A refused POST had no effect, so retrying is safe.
    async fn post(
        &self,
        what: &str,
        session: &mut Session,
        url: Url,
        form: Option<&[(String, String)]>,
    ) -> Result<Response> {
        let build = |s: &Session| {
            let rb = self.request(Method::POST, url.clone(), Some(s));
            match form {
                Some(f) => rb.form(f),
                None => rb,
            }
        };
        let resp = self.send(what, build(session)).await?;
        if resp.status() != StatusCode::FORBIDDEN || session.crumb.is_none() {
            return Ok(resp);
        }
        *session = self.session().await?;
        self.send(what, build(session)).await
    }

    /// Success (2xx), or the error that the status means. Callers handle the statuses
    /// that mean something specific to them (404) before calling this.
    async fn expect_success(&self, what: &str, resp: Response) -> Result<Response> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let what = what.to_owned();
        let user = self.username.clone();
        Err(match status {
            StatusCode::UNAUTHORIZED => JenkinsError::Unauthorized { what, user },
            StatusCode::FORBIDDEN => JenkinsError::Forbidden { what, user },
            s if s.is_redirection() => JenkinsError::Redirected {
                what,
                location: resp
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("?")
                    .to_owned(),
            },
            s => {
                let body = resp.text().await.unwrap_or_default();
                let mut body: String = body.trim().chars().take(300).collect();
                if body.is_empty() {
                    body = "(empty body)".into();
                }
                JenkinsError::Status {
                    what,
                    status: s.as_u16(),
                    body,
                }
            }
        })
    }
}

fn with_cookie(rb: RequestBuilder, session: &Session) -> RequestBuilder {
    match &session.cookie {
        Some(c) => rb.header(COOKIE, c.clone()),
        None => rb,
    }
}

async fn json<T: serde::de::DeserializeOwned>(what: &str, resp: Response) -> Result<T> {
    let bytes = resp.bytes().await.map_err(|e| http_error(what, &e))?;
    serde_json::from_slice(&bytes).map_err(|e| protocol(what, format!("invalid JSON: {e}")))
}

fn protocol(what: &str, reason: impl Into<String>) -> JenkinsError {
    JenkinsError::Protocol {
        what: what.to_owned(),
        reason: reason.into(),
    }
}

/// reqwest's own message is only "error sending request for url (...)"; the reason
/// (connection refused, timed out, certificate) is further down the source chain.
fn http_error(what: &str, e: &reqwest::Error) -> JenkinsError {
    // Refused, filtered and not-allowed read the same: the message reaches
    // the build's requester, who must not learn what listens where.
    if e.is_connect() {
        return JenkinsError::Http {
            what: what.to_owned(),
            detail: prism_netguard::UNREACHABLE.to_owned(),
        };
    }
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    JenkinsError::Http {
        what: what.to_owned(),
        detail,
    }
}
