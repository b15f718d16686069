//! A test double of Jenkins that follows its documented REST API for the calls Prism
//! makes: basic auth, a CSRF crumb bound to a session cookie, `buildWithParameters`
//! (201 + `Location` of a queue item), queue items that wait and then become builds,
//! builds that really run `sh -c "$PRISM_COMMAND"` with the parameters as environment
//! (stderr merged into the console, as a Jenkins shell step does), the progressive console
//! (`X-Text-Size`, `X-More-Data`), the build's `api/json` with its result and archived
//! artifacts, `artifact/...` downloads, `stop` and `queue/cancelItem`.
//!
//! Every request is recorded so tests can check how the protocol was followed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;
use tokio::io::AsyncReadExt;

pub const USER: &str = "prism";
pub const TOKEN: &str = "11e2c1f00dd0c0ffee1234567890abcdef";
pub const CRUMB_FIELD: &str = "Jenkins-Crumb";
const SESSION_COOKIE: &str = "JSESSIONID.4f3a9c1e";
/// What Jenkins writes into the console for "Started by user": a hidden console note
/// (a serialized hyperlink) followed by the user name.
const USER_NOTE: &str = "\u{1b}[8mha:////4AAAAB+LCAAAAAAAAP9b85aBtbiIQTGjNKU4P08vOT+vOD8nVc83PyU1x6PyYlmkc=\u{1b}[0m";

#[derive(Debug, Clone)]
pub struct DoubleConfig {
    /// CSRF protection on: crumbs are issued and required on POST. Off: the crumb issuer
    /// answers 404 and POSTs need no crumb.
    pub crumb: bool,
    /// Job paths that exist: `prism-build`, `team/prism-build`.
    pub jobs: Vec<String>,
    /// How many polls of a queue item answer "still waiting" before it starts.
    pub queue_polls: u32,
    /// Files (relative to the build's workspace) archived as artifacts when they exist.
    pub artifacts: Vec<String>,
    /// Artifacts reported as archived whatever the build did, with this relativePath and
    /// content: lets a test play a hostile or broken Jenkins (`../x`, `/etc/x`).
    pub forged_artifacts: Vec<(String, Vec<u8>)>,
    /// At most this many console bytes per progressiveText answer.
    pub chunk_size: usize,
    /// `queue/cancelItem` comes just too late: Jenkins gave the item an executor a
    /// moment before, so the item starts instead of being cancelled.
    pub cancel_too_late: bool,
    /// The shell step's "exit code to set build unstable": this exit code makes the
    /// result UNSTABLE instead of FAILURE.
    pub unstable_exit_code: Option<i32>,
}

impl Default for DoubleConfig {
    fn default() -> Self {
        Self {
            crumb: true,
            jobs: vec!["prism-build".into(), "team/prism-build".into()],
            queue_polls: 2,
            artifacts: Vec::new(),
            forged_artifacts: Vec::new(),
            chunk_size: 64,
            unstable_exit_code: None,
            cancel_too_late: false,
        }
    }
}

/// One request as the double saw it, with the status it answered.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    /// Parameters of a form-encoded body.
    pub form: Vec<(String, String)>,
    pub status: StatusCode,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone)]
enum QueueState {
    Waiting { polls_left: u32 },
    Cancelled,
    Started(Arc<Build>),
}

#[derive(Debug)]
struct QueueItem {
    job: String,
    params: Vec<(String, String)>,
    state: QueueState,
}

#[derive(Debug)]
pub struct Build {
    pub job: String,
    pub number: u64,
    pub url: String,
    pub params: Vec<(String, String)>,
    pub workspace: tempfile::TempDir,
    inner: Mutex<BuildState>,
}

#[derive(Debug, Default)]
struct BuildState {
    console: Vec<u8>,
    building: bool,
    result: Option<String>,
    artifacts: Vec<(String, Vec<u8>)>,
    pgid: Option<i32>,
    aborted: bool,
}

impl Build {
    pub fn console(&self) -> String {
        String::from_utf8_lossy(&self.inner.lock().unwrap().console).into_owned()
    }

    pub fn result(&self) -> Option<String> {
        self.inner.lock().unwrap().result.clone()
    }

    pub fn building(&self) -> bool {
        self.inner.lock().unwrap().building
    }

    /// Kill the build's processes; it ends as ABORTED.
    fn abort(&self) {
        let mut s = self.inner.lock().unwrap();
        if s.building {
            s.aborted = true;
            if let Some(pg) = s.pgid {
                kill_group(pg, libc::SIGKILL);
            }
        }
    }

    fn append(&self, text: &[u8]) {
        self.inner.lock().unwrap().console.extend_from_slice(text);
    }
}

struct Inner {
    cfg: DoubleConfig,
    base: String,
    requests: Mutex<Vec<Recorded>>,
    /// session id -> crumb
    sessions: Mutex<HashMap<String, String>>,
    queue: Mutex<HashMap<u64, QueueItem>>,
    builds: Mutex<Vec<Arc<Build>>>,
    counter: AtomicU64,
    /// GETs whose path contains this answer 503 while the count lasts.
    failing: Mutex<Option<(String, u32)>>,
}

pub struct JenkinsDouble {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl JenkinsDouble {
    pub async fn start(cfg: DoubleConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let inner = Arc::new(Inner {
            cfg,
            base: format!("http://{addr}/"),
            requests: Mutex::default(),
            sessions: Mutex::default(),
            queue: Mutex::default(),
            builds: Mutex::default(),
            counter: AtomicU64::new(0),
            failing: Mutex::default(),
        });
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, inner, task }
    }

    /// Jenkins' root URL, with the trailing slash Jenkins uses.
    pub fn url(&self) -> String {
        self.inner.base.clone()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.requests.lock().unwrap().clone()
    }

    /// Requests whose path ends with `suffix` (and method matches).
    pub fn requests_to(&self, method: Method, suffix: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method && r.path.ends_with(suffix))
            .collect()
    }

    pub fn builds(&self) -> Vec<Arc<Build>> {
        self.inner.builds.lock().unwrap().clone()
    }

    /// Forget every session, as Jenkins does when sessions time out: crumbs issued so far
    /// stop working.
    pub fn expire_sessions(&self) {
        self.inner.sessions.lock().unwrap().clear();
    }

    /// Whether any queue item was cancelled.
    pub fn cancelled_items(&self) -> usize {
        self.inner
            .queue
            .lock()
            .unwrap()
            .values()
            .filter(|q| matches!(q.state, QueueState::Cancelled))
            .count()
    }

    /// The next `count` GETs whose path contains `pattern` answer 503, as Jenkins does
    /// while it restarts, or a proxy in front of it when Jenkins is slow.
    pub fn fail_gets(&self, pattern: &str, count: u32) {
        *self.inner.failing.lock().unwrap() = Some((pattern.to_owned(), count));
    }

    /// Abort every running build, as the stop button in Jenkins' UI does.
    pub fn abort_all(&self) {
        for b in self.builds() {
            b.abort();
        }
    }

    /// Wait (bounded) until no build is running any more.
    pub async fn wait_idle(&self) {
        for _ in 0..200 {
            if self.builds().iter().all(|b| !b.building()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("double: builds still running");
    }
}

impl Drop for JenkinsDouble {
    fn drop(&mut self) {
        self.task.abort();
        for b in self.inner.builds.lock().unwrap().iter() {
            if let Some(pg) = b.inner.lock().unwrap().pgid {
                kill_group(pg, libc::SIGKILL);
            }
        }
    }
}

fn kill_group(pg: i32, sig: i32) {
    // SAFETY: killpg has no memory-safety preconditions.
    unsafe {
        libc::killpg(pg, sig);
    }
}

async fn handle(State(st): State<Arc<Inner>>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let headers = req.headers().clone();
    let body = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap_or_default();
    let form: Vec<(String, String)> = match headers.get(header::CONTENT_TYPE) {
        Some(ct) if ct.as_bytes().starts_with(b"application/x-www-form-urlencoded") => {
            url::form_urlencoded::parse(&body).into_owned().collect()
        }
        _ => Vec::new(),
    };
    let resp = route(&st, &method, &path, &query, &headers, &form).await;
    st.requests.lock().unwrap().push(Recorded {
        method,
        path,
        query,
        headers,
        form,
        status: resp.status(),
    });
    resp
}

async fn route(
    st: &Arc<Inner>,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    form: &[(String, String)],
) -> Response {
    // Authentication first, as Jenkins' filter chain does.
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{TOKEN}"))
    );
    if headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"Jenkins\"")],
            "Invalid password/token for user: prism",
        )
            .into_response();
    }
    let session = session_of(headers);
    // Then the CSRF filter: a POST needs the crumb of its own session.
    if st.cfg.crumb && method == Method::POST {
        let crumb = headers.get(CRUMB_FIELD).and_then(|v| v.to_str().ok());
        let valid = match (&session, crumb) {
            (Some(sid), Some(c)) => st.sessions.lock().unwrap().get(sid).map(String::as_str) == Some(c),
            _ => false,
        };
        if !valid {
            return (StatusCode::FORBIDDEN, "No valid crumb was included in the request").into_response();
        }
    }
    if method == Method::GET {
        if let Some((pattern, left)) = st.failing.lock().unwrap().as_mut() {
            if *left > 0 && path.contains(pattern.as_str()) {
                *left -= 1;
                return (StatusCode::SERVICE_UNAVAILABLE, "Jenkins is getting ready to work").into_response();
            }
        }
    }
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match (method, segs.as_slice()) {
        (&Method::GET, ["crumbIssuer", "api", "json"]) => crumb_issuer(st, session),
        (&Method::POST, ["queue", "cancelItem"]) => cancel_item(st, query),
        (&Method::GET, ["queue", "item", id, "api", "json"]) => queue_item(st, id).await,
        (_, ["job", ..]) => job_route(st, method, &segs, query, form).await,
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

fn session_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_owned())
}

fn crumb_issuer(st: &Inner, session: Option<String>) -> Response {
    if !st.cfg.crumb {
        return StatusCode::NOT_FOUND.into_response();
    }
    let mut sessions = st.sessions.lock().unwrap();
    // Reuse the caller's session if it is still alive, else open a new one.
    let (sid, new) = match session.filter(|s| sessions.contains_key(s)) {
        Some(s) => (s, false),
        None => (token(st), true),
    };
    let crumb = sessions.entry(sid.clone()).or_insert_with(|| token(st)).clone();
    let body = serde_json::json!({
        "_class": "hudson.security.csrf.DefaultCrumbIssuer",
        "crumb": crumb,
        "crumbRequestField": CRUMB_FIELD,
    });
    let mut resp = axum::Json(body).into_response();
    if new {
        resp.headers_mut().insert(
            header::SET_COOKIE,
            format!("{SESSION_COOKIE}={sid}; Path=/; HttpOnly").parse().unwrap(),
        );
    }
    resp
}

fn token(st: &Inner) -> String {
    let n = st.counter.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    format!("{:016x}", t.rotate_left(17) ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

fn cancel_item(st: &Arc<Inner>, query: &str) -> Response {
    let id = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "id")
        .and_then(|(_, v)| v.parse::<u64>().ok());
    let mut queue = st.queue.lock().unwrap();
    // As Jenkins 2.x: 204 when cancelled, 404 when the item is no longer in the queue
    // (unknown, or it left the queue already: too late).
    let Some(item) = id.and_then(|id| queue.get_mut(&id)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if !matches!(item.state, QueueState::Waiting { .. }) {
        return (StatusCode::NOT_FOUND, "Provided id not found").into_response();
    }
    if st.cfg.cancel_too_late {
        item.state = QueueState::Started(start_build(st, &item.job, item.params.clone()));
        return (StatusCode::NOT_FOUND, "Provided id not found").into_response();
    }
    item.state = QueueState::Cancelled;
    StatusCode::NO_CONTENT.into_response()
}

fn redirect(to: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, to.to_owned())]).into_response()
}

async fn queue_item(st: &Arc<Inner>, id: &str) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut queue = st.queue.lock().unwrap();
    let Some(item) = queue.get_mut(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if let QueueState::Waiting { polls_left } = &mut item.state {
        if *polls_left == 0 {
            let build = start_build(st, &item.job, item.params.clone());
            item.state = QueueState::Started(build);
        } else {
            *polls_left -= 1;
        }
    }
    let url = format!("{}queue/item/{id}/", st.base);
    let body = match &item.state {
        QueueState::Waiting { .. } => serde_json::json!({
            "_class": "hudson.model.Queue$WaitingItem",
            "id": id, "url": url, "blocked": false, "buildable": false, "stuck": false,
            "why": "Waiting for next available executor",
        }),
        QueueState::Cancelled => serde_json::json!({
            "_class": "hudson.model.Queue$LeftItem",
            "id": id, "url": url, "cancelled": true, "executable": null, "why": null,
        }),
        QueueState::Started(b) => serde_json::json!({
            "_class": "hudson.model.Queue$LeftItem",
            "id": id, "url": url, "cancelled": false, "why": null,
            "executable": {"_class": "hudson.model.FreeStyleBuild", "number": b.number, "url": b.url},
        }),
    };
    axum::Json(body).into_response()
}

/// `/job/a/job/b/<rest>`: split into the job path and what follows.
fn split_job(segs: &[&str]) -> (String, Vec<String>) {
    let mut names = Vec::new();
    let mut i = 0;
    while i + 1 < segs.len() && segs[i] == "job" {
        names.push(decode(segs[i + 1]));
        i += 2;
    }
    (names.join("/"), segs[i..].iter().map(|s| decode(s)).collect())
}

fn decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

async fn job_route(
    st: &Arc<Inner>,
    method: &Method,
    segs: &[&str],
    query: &str,
    form: &[(String, String)],
) -> Response {
    let (job, rest) = split_job(segs);
    if !st.cfg.jobs.contains(&job) {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    }
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    match (method, rest.as_slice()) {
        (&Method::POST, ["buildWithParameters"]) => {
            // Parameters may come in the query string or the form body.
            let mut params: Vec<(String, String)> =
                url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
            params.extend(form.iter().cloned());
            let id = st.counter.fetch_add(1, Ordering::Relaxed) + 100;
            st.queue.lock().unwrap().insert(
                id,
                QueueItem {
                    job,
                    params,
                    state: QueueState::Waiting {
                        polls_left: st.cfg.queue_polls,
                    },
                },
            );
            (
                StatusCode::CREATED,
                [(header::LOCATION, format!("{}queue/item/{id}/", st.base))],
            )
                .into_response()
        }
        (_, [number, tail @ ..]) => {
            let Some(build) = number.parse::<u64>().ok().and_then(|n| {
                st.builds
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|b| b.job == job && b.number == n)
                    .cloned()
            }) else {
                return StatusCode::NOT_FOUND.into_response();
            };
            build_route(&build, method, tail, query, st.cfg.chunk_size)
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

fn build_route(build: &Arc<Build>, method: &Method, tail: &[&str], query: &str, chunk: usize) -> Response {
    match (method, tail) {
        (&Method::GET, ["api", "json"]) => {
            let s = build.inner.lock().unwrap();
            let artifacts: Vec<_> = s
                .artifacts
                .iter()
                .map(|(rel, _)| {
                    let name = rel.rsplit('/').next().unwrap_or(rel);
                    serde_json::json!({"displayPath": name, "fileName": name, "relativePath": rel})
                })
                .collect();
            axum::Json(serde_json::json!({
                "_class": "hudson.model.FreeStyleBuild",
                "number": build.number, "url": build.url,
                "building": s.building, "result": s.result, "artifacts": artifacts,
            }))
            .into_response()
        }
        (&Method::GET, ["logText", "progressiveText"]) => {
            let start = url::form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == "start")
                .and_then(|(_, v)| v.parse::<usize>().ok())
                .unwrap_or(0);
            let s = build.inner.lock().unwrap();
            let start = start.min(s.console.len());
            let end = s.console.len().min(start + chunk);
            let mut resp = Response::new(Body::from(s.console[start..end].to_vec()));
            let h = resp.headers_mut();
            h.insert(header::CONTENT_TYPE, "text/plain;charset=UTF-8".parse().unwrap());
            h.insert("X-Text-Size", end.to_string().parse().unwrap());
            if s.building || end < s.console.len() {
                h.insert("X-More-Data", "true".parse().unwrap());
            }
            resp
        }
        (&Method::GET, ["artifact", path @ ..]) => {
            let rel = path.join("/");
            let s = build.inner.lock().unwrap();
            match s.artifacts.iter().find(|(r, _)| *r == rel) {
                Some((_, bytes)) => bytes.clone().into_response(),
                None => StatusCode::NOT_FOUND.into_response(),
            }
        }
        (&Method::POST, ["stop"]) => {
            build.abort();
            redirect(&build.url)
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Start a build of `job`: the "job" is a shell step `sh -c "$PRISM_COMMAND"` with the
/// parameters as environment, stderr merged into the console.
fn start_build(st: &Arc<Inner>, job: &str, params: Vec<(String, String)>) -> Arc<Build> {
    let number = {
        let builds = st.builds.lock().unwrap();
        builds.iter().filter(|b| b.job == job).count() as u64 + 1
    };
    let job_path: String = job.split('/').map(|n| format!("job/{n}/")).collect();
    let build = Arc::new(Build {
        job: job.to_owned(),
        number,
        url: format!("{}{job_path}{number}/", st.base),
        params: params.clone(),
        workspace: tempfile::tempdir().unwrap(),
        inner: Mutex::new(BuildState {
            building: true,
            ..Default::default()
        }),
    });
    build.append(
        format!(
            "Started by user {USER_NOTE}{USER}\nRunning as SYSTEM\nBuilding in workspace {}\n[{job}] $ /bin/sh -c \"$PRISM_COMMAND\"\n",
            build.workspace.path().display()
        )
        .as_bytes(),
    );
    st.builds.lock().unwrap().push(build.clone());
    tokio::spawn(run_build(build.clone(), params, st.cfg.clone()));
    build
}

async fn run_build(build: Arc<Build>, params: Vec<(String, String)>, cfg: DoubleConfig) {
    let ws: PathBuf = build.workspace.path().to_owned();
    let child = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg("exec 2>&1; exec /bin/sh -c \"$PRISM_COMMAND\"")
        .current_dir(&ws)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .envs(params)
        .env("WORKSPACE", &ws)
        .env("BUILD_NUMBER", build.number.to_string())
        .env("JOB_NAME", &build.job)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn();
    let exit_code = match child {
        Err(e) => {
            build.append(format!("ERROR: cannot run sh: {e}\n").as_bytes());
            None
        }
        Ok(mut child) => {
            build.inner.lock().unwrap().pgid = child.id().map(|p| p as i32);
            let mut out = child.stdout.take().unwrap();
            let mut buf = [0u8; 512];
            loop {
                match out.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => build.append(&buf[..n]),
                }
            }
            child.wait().await.ok().and_then(|s| s.code())
        }
    };
    let aborted = build.inner.lock().unwrap().aborted;
    let result = match exit_code {
        _ if aborted => "ABORTED",
        Some(0) => "SUCCESS",
        Some(c) if Some(c) == cfg.unstable_exit_code => "UNSTABLE",
        _ => "FAILURE",
    };
    if aborted {
        build.append(format!("Aborted by {USER}\n").as_bytes());
    }
    let mut archived = Vec::new();
    if !aborted {
        for rel in &cfg.artifacts {
            if let Ok(bytes) = std::fs::read(ws.join(rel)) {
                archived.push((rel.clone(), bytes));
            }
        }
        archived.extend(cfg.forged_artifacts);
        if !archived.is_empty() {
            build.append(b"Archiving artifacts\n");
        }
    }
    build.append(format!("Finished: {result}\n").as_bytes());
    let mut s = build.inner.lock().unwrap();
    s.artifacts = archived;
    s.result = Some(result.to_owned());
    s.pgid = None;
    s.building = false;
}
