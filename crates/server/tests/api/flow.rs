//! A release's whole life through the API, as the three roles would drive it.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::both_backends;

both_backends!(release_moves_fat_uat_prd_under_role_rules, |app| {
    app.project_with_app("shop", "web").await;
    let dev = app.user("dana", Some("shop"), &["developer"]).await;
    let tester = app.user("tess", Some("shop"), &["tester"]).await;
    let ops = app.user("otto", Some("shop"), &["operator"]).await;

    // A developer creates the release order; the engine (admin) builds it.
    let (s, r) = app
        .post(
            "/api/v1/releases",
            &dev,
            json!({"application": "web", "git_ref": "release/1.0", "change_note": "first cut"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let id = r["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with('r'));
    assert_eq!(r["state"], "created");
    assert_eq!(r["creator"], "dana");
    app.act(&id, "start_build", &dev, json!({})).await;
    let (s, e) = app.try_act(&id, "build_succeeded", &dev, json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a developer cannot fake a build result: {e}");
    let digest = format!("sha256:{}", "b".repeat(64));
    let r = app
        .act(
            &id,
            "build_succeeded",
            &app.admin,
            json!({"commit_sha": "abcdef1", "image_ref": format!("registry.local/web:{id}"), "image_digest": digest}),
        )
        .await;
    assert_eq!(r["state"], "built");
    assert_eq!(r["image_digest"], digest.as_str());

    // FAT lets developers deploy.
    let r = app.act(&id, "promote", &dev, json!({"environment": "fat"})).await;
    assert_eq!(
        (r["state"].as_str(), r["environment"].as_str()),
        (Some("promoted"), Some("fat"))
    );
    app.act(&id, "deploy", &dev, json!({"environment": "fat"})).await;
    app.act(&id, "deploy_succeeded", &app.admin, json!({})).await;
    let board = app.get("/api/v1/board?application=web", &tester).await.1;
    assert_eq!(board[0]["environment"], "fat");
    assert_eq!(board[0]["current_release"], id.as_str());

    // UAT needs FAT passed first, then a tester moves it; only operators deploy.
    let (s, e) = app
        .try_act(&id, "promote", &tester, json!({"environment": "uat"}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["code"], "out_of_order");
    app.act(&id, "pass", &tester, json!({"note": "smoke tests green"}))
        .await;
    let (s, _) = app.try_act(&id, "promote", &dev, json!({"environment": "uat"})).await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "developers do not promote into formal environments"
    );
    app.act(&id, "promote", &tester, json!({"environment": "uat"})).await;
    let (s, _) = app.try_act(&id, "deploy", &tester, json!({"environment": "uat"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    app.act(&id, "deploy", &ops, json!({"environment": "uat"})).await;
    app.act(&id, "deploy_succeeded", &app.admin, json!({})).await;
    app.act(&id, "pass", &tester, json!({})).await;
    app.act(&id, "promote", &tester, json!({"environment": "prd"})).await;
    let (s, _) = app.try_act(&id, "deploy", &dev, json!({"environment": "prd"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a developer cannot deploy to PRD");
    app.act(&id, "deploy", &ops, json!({"environment": "prd"})).await;
    let r = app.act(&id, "deploy_succeeded", &app.admin, json!({})).await;
    assert_eq!(
        (r["state"].as_str(), r["environment"].as_str()),
        (Some("deployed"), Some("prd"))
    );
    let r = app.act(&id, "close", &ops, json!({})).await;
    assert_eq!(r["state"], "closed");

    // The history records every step, in order, with who did it.
    let h = app.get(&format!("/api/v1/releases/{id}/history"), &dev).await.1;
    let steps: Vec<(String, String)> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["action"].as_str().unwrap().to_owned(),
                t["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expect = [
        ("start_build", "dana"),
        ("build_succeeded", "admin"),
        ("promote", "dana"),
        ("deploy", "dana"),
        ("deploy_succeeded", "admin"),
        ("pass", "tess"),
        ("promote", "tess"),
        ("deploy", "otto"),
        ("deploy_succeeded", "admin"),
        ("pass", "tess"),
        ("promote", "tess"),
        ("deploy", "otto"),
        ("deploy_succeeded", "admin"),
        ("close", "otto"),
    ];
    assert_eq!(
        steps,
        expect
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
    );

    // And the audit log has each change with its actor and address.
    let audit = app
        .ok(
            Method::GET,
            &format!("/api/v1/audit?record_type=release&record_id={id}&limit=100"),
            &app.admin,
            None,
        )
        .await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions.len(), 15, "{actions:?}");
    assert_eq!(actions.last(), Some(&"release.create"));
    assert_eq!(audit[0]["action"], "release.close");
    assert_eq!(audit[0]["actor"], "otto");
    assert_eq!(audit[0]["address"], "127.0.0.1");
    let (s, _) = app.get("/api/v1/audit", &ops).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "the audit log is for admins");
});

both_backends!(releases_page_newest_first_with_a_cursor, |app| {
    app.project_with_app("shop", "web").await;
    let mut ids = vec![];
    for i in 0..7 {
        let r = app
            .ok(
                Method::POST,
                "/api/v1/releases",
                &app.admin,
                Some(json!({"application": "web", "git_ref": "main", "change_note": format!("n{i}")})),
            )
            .await;
        ids.push(r["id"].as_str().unwrap().to_owned());
    }
    let p1 = app.get("/api/v1/releases?application=web&limit=3", &app.admin).await.1;
    let got: Vec<&str> = p1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, vec![ids[6].as_str(), ids[5].as_str(), ids[4].as_str()]);
    let next = p1["next"].as_str().unwrap();
    let p2 = app
        .get(
            &format!("/api/v1/releases?application=web&limit=3&before={next}"),
            &app.admin,
        )
        .await
        .1;
    let got: Vec<&str> = p2["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, vec![ids[3].as_str(), ids[2].as_str(), ids[1].as_str()]);
    // Release ids are monotonic.
    let nums: Vec<i64> = ids.iter().map(|i| i[1..].parse().unwrap()).collect();
    assert!(nums.windows(2).all(|w| w[1] > w[0]), "{nums:?}");
});
