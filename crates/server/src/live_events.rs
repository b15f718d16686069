//! Live event streams (server-sent events of a build's log and state):
//! admission, one poller per build shared by every client, and the caller
//! re-checked while a stream is open.
//!
//! ```text
//! client --admit--> Permit (per user <= MAX_PER_USER, all <= MAX_TOTAL, else 429)
//!        --subscribe(build)--> Hub: one poller task per watched build, reading
//!                              the store every POLL and broadcasting batches
//!   each client: replays what was stored before it joined, then follows the
//!   broadcast; every RECHECK its credential and membership are checked again
//!   and a disabled user's stream ends with `event: end` {"reason": ...}.
//! ```
//!
//! Resuming: Prism runs as several instances behind a load balancer, so a
//! stream may break off when its instance goes away. Each stream starts with
//! a `retry:` hint (RETRY) and every event that can be missed carries an id;
//! a client reconnecting with `Last-Event-ID` (or `?last_event_id=`) gets
//! only what came after that id ([`resume_after`]).
//!
//! Settings (environment, read once): `PRISM_SSE_MAX_PER_USER` (default 5)
//! and `PRISM_SSE_MAX_TOTAL` (default 200).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::Event;
use futures::Stream;
use prism_store::builds::{self, LogLine};
use prism_store::{tokens, Store};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast;

use crate::auth::caller::{Caller, Credential};
use crate::error::ApiError;

/// How often the one poller of a build reads the store.
const POLL: Duration = Duration::from_millis(200);
/// How often an open stream checks its caller again.
pub const RECHECK: Duration = Duration::from_secs(15);
/// Lines per read, while replaying or following.
const PAGE: i64 = 500;
/// How soon a client should reconnect after its stream broke off: soon, as
/// another instance can take over at once.
const RETRY: Duration = Duration::from_millis(1000);
/// The header EventSource sends when it reconnects.
const LAST_EVENT_ID: &str = "Last-Event-ID";

/// `?last_event_id=`: the resume point for clients that cannot set headers.
/// Other parameters are ignored, as they were before there was one.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResumeQuery {
    /// Only events after this id, like the `Last-Event-ID` header (the
    /// header wins when both are given).
    pub last_event_id: Option<String>,
}

/// Where a reconnecting client resumes: strictly after the id in the
/// `Last-Event-ID` header, else the one in `?last_event_id=`; `None` for a
/// fresh stream (everything from the start). The header wins because a
/// browser that opened the stream with the query parameter sends the newer
/// id in the header when it reconnects to the same address. An empty value
/// is no id, as for EventSource.
pub fn resume_after(headers: &HeaderMap, query: &ResumeQuery) -> Result<Option<i64>, ApiError> {
    let header = match headers.get(LAST_EVENT_ID) {
        Some(v) => Some(v.to_str().map_err(|_| bad_event_id(LAST_EVENT_ID))?),
        None => None,
    };
    match header.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => parse_event_id(LAST_EVENT_ID, v).map(Some),
        None => match query.last_event_id.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            Some(v) => parse_event_id("last_event_id", v).map(Some),
            None => Ok(None),
        },
    }
}

/// An event id as this server writes them: a non-negative integer (no sign).
fn parse_event_id(field: &str, raw: &str) -> Result<i64, ApiError> {
    if !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_event_id(field));
    }
    raw.parse().map_err(|_| bad_event_id(field))
}

fn bad_event_id(field: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "validation",
        format!("{field} must be the id of the last event received: a non-negative integer"),
    )
    .field(field)
}

/// The first event of every stream: how soon to reconnect (EventSource's
/// default is a few seconds).
pub fn retry_hint() -> Event {
    Event::default().retry(RETRY)
}

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

/// Streams one user may hold open at once (`PRISM_SSE_MAX_PER_USER`, default 5).
pub fn max_per_user() -> usize {
    static V: OnceLock<usize> = OnceLock::new();
    *V.get_or_init(|| setting("PRISM_SSE_MAX_PER_USER", 5))
}

/// Streams open at once in this instance (`PRISM_SSE_MAX_TOTAL`, default 200).
pub fn max_total() -> usize {
    static V: OnceLock<usize> = OnceLock::new();
    *V.get_or_init(|| setting("PRISM_SSE_MAX_TOTAL", 200))
}

#[derive(Default)]
struct Open {
    total: usize,
    /// Keyed by user id and creation time: one process serving several
    /// stores (tests) never mixes two users that share an id.
    per_user: HashMap<(i64, i64), usize>,
}

fn open() -> &'static Mutex<Open> {
    static OPEN: OnceLock<Mutex<Open>> = OnceLock::new();
    OPEN.get_or_init(Default::default)
}

/// One admitted stream; dropping it (the client went away, the stream ended)
/// frees the place.
pub struct Permit {
    user: (i64, i64),
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut o = open().lock().expect("not poisoned");
        o.total = o.total.saturating_sub(1);
        if let Some(n) = o.per_user.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                o.per_user.remove(&self.user);
            }
        }
    }
}

/// Admits one more stream for `caller`, or a 429 saying which limit is reached.
pub fn admit(caller: &Caller) -> Result<Permit, ApiError> {
    let mut o = open().lock().expect("not poisoned");
    let user = (caller.user.id, caller.user.created_at);
    let mine = o.per_user.get(&user).copied().unwrap_or(0);
    if mine >= max_per_user() {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_streams",
            format!(
                "you already have {mine} live streams open (the limit per user is {}); close one first",
                max_per_user()
            ),
        ));
    }
    if o.total >= max_total() {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_streams",
            format!(
                "the server has {} live streams open (its limit); try again later",
                o.total
            ),
        ));
    }
    o.total += 1;
    *o.per_user.entry(user).or_insert(0) += 1;
    Ok(Permit { user })
}

/// Keeps `permit` for as long as `stream` lives (streams that do their own polling).
pub fn hold<S: Stream>(stream: S, permit: Permit) -> impl Stream<Item = S::Item> {
    use futures::StreamExt;
    stream.map(move |item| {
        let _ = &permit;
        item
    })
}

/// What the one poller of a build broadcasts.
#[derive(Clone, Debug)]
enum Update {
    Lines(Arc<Vec<LogLine>>),
    State(Arc<builds::Build>),
}

/// A watched build: its id and creation time (a process serving several
/// stores, as tests do, never shares one poller between two builds).
type HubKey = (i64, i64);

/// One poller per watched build; it stops when its last subscriber leaves.
fn hubs() -> &'static Mutex<HashMap<HubKey, Weak<broadcast::Sender<Update>>>> {
    static HUBS: OnceLock<Mutex<HashMap<HubKey, Weak<broadcast::Sender<Update>>>>> = OnceLock::new();
    HUBS.get_or_init(Default::default)
}

/// A subscription to a build's updates; holding the `Arc` keeps the poller alive.
fn subscribe(store: &Store, key: HubKey) -> (Arc<broadcast::Sender<Update>>, broadcast::Receiver<Update>) {
    let mut h = hubs().lock().expect("not poisoned");
    if let Some(tx) = h.get(&key).and_then(Weak::upgrade) {
        let rx = tx.subscribe();
        return (tx, rx);
    }
    let (tx, rx) = broadcast::channel(64);
    let tx = Arc::new(tx);
    h.insert(key, Arc::downgrade(&tx));
    tokio::spawn(poll(store.clone(), key, Arc::downgrade(&tx)));
    (tx, rx)
}

/// The poller: reads new lines and state changes once for all subscribers.
async fn poll(store: Store, key: HubKey, tx: Weak<broadcast::Sender<Update>>) {
    let build_id = key.0;
    let mut after = match store.conn().await {
        Ok(mut c) => builds::next_log_seq(&mut c, build_id).await.unwrap_or(0) - 1,
        Err(_) => -1,
    };
    let mut seen: Option<(prism_domain::BuildState, Option<String>)> = None;
    loop {
        tokio::time::sleep(POLL).await;
        let Some(sender) = tx.upgrade() else { break };
        let Ok(mut c) = store.conn().await else { continue };
        let (Ok(b), Ok(lines)) = (
            builds::get(&mut c, build_id).await,
            builds::logs(&mut c, build_id, after, PAGE).await,
        ) else {
            continue;
        };
        drop(c);
        if let Some(last) = lines.last() {
            after = last.seq;
            let _ = sender.send(Update::Lines(Arc::new(lines)));
        }
        let now = (b.state, b.commit_sha.clone());
        if seen.as_ref() != Some(&now) {
            seen = Some(now);
            let _ = sender.send(Update::State(Arc::new(b)));
        }
    }
    let mut h = hubs().lock().expect("not poisoned");
    if h.get(&key).is_some_and(|w| w.strong_count() == 0) {
        h.remove(&key);
    }
}

/// Whether the caller may still watch: credential valid, user enabled, still a member.
async fn still_allowed(store: &Store, caller: &Caller, project_id: i64) -> bool {
    let Ok(mut c) = store.conn().await else { return true };
    let active = match &caller.credential {
        Credential::ApiToken { id } => tokens::token_active(&mut c, *id).await,
        Credential::Session { id, .. } => tokens::session_active(&mut c, *id).await,
    };
    if !matches!(active, Ok(true)) {
        return false;
    }
    // Roles come from the store again, not from the caller captured at the start.
    let admin = prism_store::users::get(&mut c, caller.user.id)
        .await
        .map(|u| u.admin())
        .unwrap_or(false);
    prism_store::projects::roles(&mut c, project_id, caller.user.id, admin)
        .await
        .map(|r| r.is_member())
        .unwrap_or(false)
}

fn state_event(b: &builds::Build) -> Option<Event> {
    Event::default()
        .event("state")
        .json_data(json!({"state": b.state, "commit_sha": b.commit_sha}))
        .ok()
}

fn end_event(b: &builds::Build) -> Option<Event> {
    Event::default()
        .event("end")
        .json_data(prism_api::builds::BuildEnd {
            state: b.state,
            failure_kind: b.failure_kind,
            error: b.error.clone(),
            image_ref: b.image_ref.clone(),
            image_digest: b.image_digest.clone(),
        })
        .ok()
}

fn line_events(lines: &[LogLine], after: i64) -> impl Iterator<Item = Event> + '_ {
    lines
        .iter()
        .filter(move |l| l.seq > after)
        .filter_map(|l| Event::default().event("line").id(l.seq.to_string()).json_data(l).ok())
}

/// The events of build `build`: `line` for every log line from the start (a
/// finished build replays), or only those after `resume` (a log `seq`, from
/// [`resume_after`]); `state` first and when the stage changes, then `end`
/// with the result. Ends early, with an `end` event giving the reason, when
/// the caller may no longer watch.
pub fn build_events(
    store: Store,
    caller: Caller,
    build: builds::Build,
    resume: Option<i64>,
    permit: Permit,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let (tx, rx) = subscribe(&store, (build.id, build.created_at));
    let project_id = build.project_id;
    let id = build.id;
    async_stream(move |emit| async move {
        let _permit = permit;
        let _keep_poller = tx;
        let mut rx = rx;
        emit(retry_hint()).await;
        // Replay what is stored, page by page, from our own reads: from the
        // start, or after the last line a reconnecting client had.
        let mut after = resume.unwrap_or(-1);
        let mut seen_state: Option<prism_domain::BuildState> = None;
        let mut last_check = tokio::time::Instant::now();
        loop {
            let Ok(mut c) = store.conn().await else { return };
            let (Ok(b), Ok(lines)) = (
                builds::get(&mut c, id).await,
                builds::logs(&mut c, id, after, PAGE).await,
            ) else {
                return;
            };
            drop(c);
            if Some(b.state) != seen_state {
                seen_state = Some(b.state);
                if let Some(ev) = state_event(&b) {
                    emit(ev).await;
                }
            }
            for ev in line_events(&lines, after) {
                emit(ev).await;
            }
            if let Some(last) = lines.last() {
                after = last.seq;
            }
            if lines.len() < PAGE as usize {
                // The job stores the last lines before the final state: a final
                // state seen after a short page means the log is complete.
                if b.state.is_final() {
                    let Ok(mut c) = store.conn().await else { return };
                    let rest = builds::logs(&mut c, id, after, PAGE).await.unwrap_or_default();
                    drop(c);
                    for ev in line_events(&rest, after) {
                        emit(ev).await;
                    }
                    if let Some(ev) = end_event(&b) {
                        emit(ev).await;
                    }
                    return;
                }
                break;
            }
        }
        // Follow the shared poller.
        loop {
            let next = tokio::time::timeout(RECHECK, rx.recv()).await;
            if last_check.elapsed() >= RECHECK {
                last_check = tokio::time::Instant::now();
                if !still_allowed(&store, &caller, project_id).await {
                    if let Ok(ev) = Event::default()
                        .event("end")
                        .json_data(json!({"reason": "your access to this build has ended (signed out, disabled or no longer a member)"}))
                    {
                        emit(ev).await;
                    }
                    return;
                }
            }
            match next {
                Err(_) => continue,
                Ok(Ok(Update::Lines(lines))) => {
                    for ev in line_events(&lines, after) {
                        emit(ev).await;
                    }
                    if let Some(last) = lines.last() {
                        after = after.max(last.seq);
                    }
                }
                Ok(Ok(Update::State(b))) => {
                    if Some(b.state) != seen_state {
                        seen_state = Some(b.state);
                        if let Some(ev) = state_event(&b) {
                            emit(ev).await;
                        }
                    }
                    if b.state.is_final() {
                        // Lines stored before the final state: read what this client has not had.
                        let Ok(mut c) = store.conn().await else { return };
                        loop {
                            let rest = builds::logs(&mut c, id, after, PAGE).await.unwrap_or_default();
                            for ev in line_events(&rest, after) {
                                emit(ev).await;
                            }
                            match rest.last() {
                                Some(l) => after = l.seq,
                                None => break,
                            }
                        }
                        if let Some(ev) = end_event(&b) {
                            emit(ev).await;
                        }
                        return;
                    }
                }
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => {
                    // Fell behind the broadcast: catch up from the store.
                    let Ok(mut c) = store.conn().await else { return };
                    let rest = builds::logs(&mut c, id, after, PAGE).await.unwrap_or_default();
                    drop(c);
                    for ev in line_events(&rest, after) {
                        emit(ev).await;
                    }
                    if let Some(l) = rest.last() {
                        after = l.seq;
                    }
                }
                Ok(Err(broadcast::error::RecvError::Closed)) => return,
            }
        }
    })
}

/// A small generator: `body` gets an `emit` function whose future completes
/// when the event has been taken by the stream's reader (a bounded channel of
/// 16 events: a slow client holds back its own task, nothing else).
type Emit = Box<dyn Fn(Event) -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

fn async_stream<F, Fut>(body: F) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(Emit) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(16);
    let emit: Emit = Box::new(move |ev: Event| {
        let tx = tx.clone();
        Box::pin(async move {
            let _ = tx.send(ev).await;
        }) as futures::future::BoxFuture<'static, ()>
    });
    let task = tokio::spawn(body(emit));
    let guard = AbortOnDrop(task);
    futures::stream::unfold((rx, guard), |(mut rx, guard)| async move {
        let ev = rx.recv().await?;
        Some((Ok(ev), (rx, guard)))
    })
}

/// Ends the producing task when the client goes away.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
