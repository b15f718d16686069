//! Live streams resume (issue 15 item 1): a client that reconnects, to any
//! instance, with `Last-Event-ID` (or `?last_event_id=`) gets exactly what
//! came after that id, never a replay from the start; an id that is not a
//! non-negative integer is a 400 naming the field; without one the stream
//! replays everything, as before. Builds and deploys are recorded straight
//! in the store (no builder, no cluster): the streams only read the store.

use std::time::Duration;

use prism_domain::{BuildFailure, DeployEvent, DeployFailure, DeployKind, DeployState, ReleaseId};
use prism_store::builds::{self, LogLine, NewBuild};
use prism_store::deploys::{self, NewDeploy};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::both_backends;
use crate::harness::TestApp;

/// One event of a `text/event-stream` body.
#[derive(Debug, Clone, PartialEq)]
struct Sse {
    event: String,
    id: Option<String>,
    data: Value,
}

/// The events of a whole body, and the `retry:` hint if one came.
fn parse_sse(body: &str) -> (Vec<Sse>, Option<u64>) {
    let mut events = vec![];
    let mut retry = None;
    for block in body.split("\n\n") {
        let (mut event, mut id, mut data) = (None, None, None);
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("event: ") {
                event = Some(v.to_owned());
            } else if let Some(v) = line.strip_prefix("id: ") {
                id = Some(v.to_owned());
            } else if let Some(v) = line.strip_prefix("data: ") {
                data = Some(serde_json::from_str(v).expect("JSON data"));
            } else if let Some(v) = line.strip_prefix("retry: ") {
                retry = Some(v.parse().expect("retry in ms"));
            }
        }
        if let (Some(event), Some(data)) = (event, data) {
            events.push(Sse { event, id, data });
        }
    }
    (events, retry)
}

/// A finished stream's whole body; `headers` are extra request headers.
async fn read_stream(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> (StatusCode, String) {
    let mut req = app.http.get(format!("{}{path}", app.base)).bearer_auth(&app.admin);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let body = tokio::time::timeout(Duration::from_secs(20), resp.text())
        .await
        .unwrap_or_else(|_| panic!("{path} {headers:?}: the stream of a finished record ends"))
        .unwrap();
    (status, body)
}

/// The events of a finished stream, checking the hint that starts it.
async fn events(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> Vec<Sse> {
    let (status, body) = read_stream(app, path, headers).await;
    assert_eq!(status, StatusCode::OK, "{path} {headers:?}: {body}");
    assert!(
        body.starts_with("retry: "),
        "the stream starts with its retry hint: {body}"
    );
    let (events, retry) = parse_sse(&body);
    assert_eq!(retry, Some(1000), "{body}");
    events
}

/// The `seq`s of the `line` events, checking each event's id is its seq.
fn line_seqs(events: &[Sse]) -> Vec<i64> {
    events
        .iter()
        .filter(|e| e.event == "line")
        .map(|e| {
            let seq = e.data["seq"].as_i64().unwrap();
            assert_eq!(e.id.as_deref(), Some(seq.to_string().as_str()), "{e:?}");
            seq
        })
        .collect()
}

fn kinds(events: &[Sse]) -> Vec<&str> {
    events.iter().map(|e| e.event.as_str()).collect()
}

/// A 400 naming `field`, for a resume point that is no event id.
async fn refused(app: &TestApp, path: &str, headers: &[(&str, &str)], field: &str) {
    let (status, body) = read_stream(app, path, headers).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {headers:?}: {body}");
    let v: Value = serde_json::from_str(&body).expect("a JSON error body");
    assert_eq!(v["field"], field, "{v}");
    assert_eq!(v["code"], "validation", "{v}");
}

/// A release of `web` (project alpha), as its id.
async fn release(app: &TestApp) -> ReleaseId {
    app.project_with_app("alpha", "web").await;
    let r = app
        .ok(
            Method::POST,
            "/api/v1/releases",
            &app.admin,
            Some(json!({"application": "web", "git_ref": "main", "change_note": "resume"})),
        )
        .await;
    ReleaseId::parse("id", r["id"].as_str().unwrap()).unwrap()
}

/// A queued build of `rel` with log lines `0..lines`, recorded in the store.
async fn build_with_lines(app: &TestApp, rel: ReleaseId, lines: i64) -> i64 {
    let mut c = app.store.conn().await.unwrap();
    let r = prism_store::releases::get(&mut c, rel).await.unwrap();
    let b = builds::create(
        &mut c,
        NewBuild {
            release: rel,
            app_id: r.app_id,
            executor: "local",
            settings: &json!({}),
            base_image_id: None,
            requested_by: "admin",
        },
    )
    .await
    .unwrap();
    drop(c);
    append(app, b.id, 0..lines).await;
    b.id
}

async fn append(app: &TestApp, build: i64, seqs: std::ops::Range<i64>) {
    let lines: Vec<LogLine> = seqs
        .map(|seq| LogLine {
            seq,
            stream: "stdout".into(),
            line: format!("line {seq}"),
            at: 0,
        })
        .collect();
    let mut c = app.store.conn().await.unwrap();
    builds::append_logs(&mut c, build, &lines).await.unwrap();
}

async fn fail_build(app: &TestApp, build: i64) {
    let mut c = app.store.conn().await.unwrap();
    assert!(builds::finish_failed(&mut c, build, BuildFailure::Build, "exit 1")
        .await
        .unwrap());
}

both_backends!(a_finished_build_resumes_after_the_last_event_id, |app| {
    let rel = release(app).await;
    let build = build_with_lines(app, rel, 5).await;
    fail_build(app, build).await;
    let path = format!("/api/v1/builds/{build}/stream");

    // Without a resume point: every line from the start, as before.
    let all = events(app, &path, &[]).await;
    assert_eq!(kinds(&all).first(), Some(&"state"), "{all:?}");
    assert_eq!(line_seqs(&all), [0, 1, 2, 3, 4]);
    assert_eq!(kinds(&all).last(), Some(&"end"), "{all:?}");
    assert_eq!(all.last().unwrap().data["state"], "failed");

    // After the second line (seq 1): the state, exactly the later lines, the end.
    let later = events(app, &path, &[("Last-Event-ID", "1")]).await;
    assert_eq!(kinds(&later), ["state", "line", "line", "line", "end"], "{later:?}");
    assert_eq!(line_seqs(&later), [2, 3, 4]);
    assert_eq!(later[0].data["state"], "failed");
    // The query parameter, for clients that cannot set headers, does the same.
    let by_query = events(app, &format!("{path}?last_event_id=1"), &[]).await;
    assert_eq!(by_query, later);
    // A browser that opened the stream with the query parameter sends the
    // newer id in the header when it reconnects: the header wins.
    let both = events(app, &format!("{path}?last_event_id=0"), &[("Last-Event-ID", "3")]).await;
    assert_eq!(line_seqs(&both), [4]);
    // After the last line: nothing to replay, only where the build is.
    let none = events(app, &path, &[("Last-Event-ID", "4")]).await;
    assert_eq!(kinds(&none), ["state", "end"], "{none:?}");

    // Not an event id: 400 naming the field, and no stream.
    for bad in ["abc", "-1", "+1", "1.5", "99999999999999999999"] {
        refused(app, &path, &[("Last-Event-ID", bad)], "Last-Event-ID").await;
    }
    refused(app, &format!("{path}?last_event_id=x"), &[], "last_event_id").await;
    // The stream limit was not spent on refused requests.
    assert_eq!(line_seqs(&events(app, &path, &[("Last-Event-ID", "2")]).await), [3, 4]);
});

both_backends!(a_running_build_resumes_and_follows_without_repeats, |app| {
    let rel = release(app).await;
    let build = build_with_lines(app, rel, 3).await;
    let resp = app
        .http
        .get(format!("{}/api/v1/builds/{build}/stream", app.base))
        .bearer_auth(&app.admin)
        .header("Last-Event-ID", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // Lines written while the client follows, then the end.
    let writer = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        append(app, build, 3..6).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        fail_build(app, build).await;
    };
    let (_, body) = tokio::join!(writer, async {
        tokio::time::timeout(Duration::from_secs(20), resp.text())
            .await
            .expect("the stream ends with the build")
            .unwrap()
    });
    let (got, _) = parse_sse(&body);
    assert_eq!(line_seqs(&got), [2, 3, 4, 5], "{body}");
    assert_eq!(kinds(&got).first(), Some(&"state"), "{body}");
    assert_eq!(kinds(&got).last(), Some(&"end"), "{body}");
});

both_backends!(a_finished_deploy_resumes_after_the_last_event_id, |app| {
    app.project_with_app("alpha", "web").await;
    let rel = app.built_release("web").await;
    let mut c = app.store.conn().await.unwrap();
    let web = prism_store::apps::by_name(&mut c, "web").await.unwrap();
    let fat = prism_store::environments::by_name(&mut c, "fat").await.unwrap();
    let d = deploys::create(
        &mut c,
        NewDeploy {
            release: ReleaseId::parse("id", &rel).unwrap(),
            app_id: web.id,
            env_id: fat.id,
            kind: DeployKind::Deploy,
            requested_by: "admin",
            rollback_of: None,
            manifests: None,
        },
    )
    .await
    .unwrap();
    for step in ["plan", "apply", "watch", "failed"] {
        deploys::event(&mut c, d.id, step, &format!("{step} happened"), json!({}))
            .await
            .unwrap();
    }
    let failed = DeployEvent::Fail(DeployFailure::Render);
    assert!(deploys::advance(&mut c, d.id, DeployState::Planning, failed)
        .await
        .unwrap());
    let ids: Vec<String> = deploys::events(&mut c, d.id, 0)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id.to_string())
        .collect();
    drop(c);
    let path = format!("/api/v1/deploys/{}/stream", d.id);
    let steps = |events: &[Sse]| -> Vec<String> {
        events
            .iter()
            .filter(|e| e.event == "step")
            .map(|e| {
                assert_eq!(e.id, Some(e.data["id"].to_string()), "{e:?}");
                e.data["step"].as_str().unwrap().to_owned()
            })
            .collect()
    };

    let all = events(app, &path, &[]).await;
    assert_eq!(steps(&all), ["plan", "apply", "watch", "failed"]);
    assert_eq!(kinds(&all).last(), Some(&"end"), "{all:?}");

    let later = events(app, &path, &[("Last-Event-ID", &ids[1])]).await;
    assert_eq!(kinds(&later), ["step", "step", "end"], "{later:?}");
    assert_eq!(steps(&later), ["watch", "failed"]);
    assert_eq!(later.last().unwrap().data["state"], "failed");
    let by_query = events(app, &format!("{path}?last_event_id={}", ids[1]), &[]).await;
    assert_eq!(by_query, later);
    let none = events(app, &path, &[("Last-Event-ID", &ids[3])]).await;
    assert_eq!(kinds(&none), ["end"], "{none:?}");

    for bad in ["abc", "-1"] {
        refused(app, &path, &[("Last-Event-ID", bad)], "Last-Event-ID").await;
    }
    refused(app, &format!("{path}?last_event_id=-5"), &[], "last_event_id").await;
});
