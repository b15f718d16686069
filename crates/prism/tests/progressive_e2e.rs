//! Progressive delivery end to end (issue 14): a real `prism serve`, a real
//! Kubernetes v1.20.2 control plane (scripts/k8s/cluster.sh) with the
//! simulated node playing the kubelet, and for metric gates a real
//! Prometheus scraping a real Pushgateway into which the test pushes the
//! error rate the canary is judged on. What the test checks in the cluster
//! it reads with kubectl; the server is killed with SIGKILL mid-rollout.

use std::time::Duration;

use serde_json::{json, Value};

use prism_test_support::api::Api;
use prism_test_support::kube::KubeCluster;
use prism_test_support::metrics::MetricsStack;
use prism_test_support::process::ADMIN_PASSWORD;
use prism_test_support::{wait_for_every, ServerProcess};

const GATE_QUERY: &str = "sum(canary_error_rate{app=\"{{app}}\",track=\"{{track}}\"})";

fn wait(what: &str, secs: u64, f: impl FnMut() -> bool) {
    wait_for_every(what, Duration::from_secs(secs), Duration::from_millis(150), f)
}

fn server() -> ServerProcess {
    ServerProcess::start_with(
        "progressive",
        &[
            ("PRISM_JOB_LEASE_SECONDS", "2"),
            ("PRISM_JOB_POLL_MS", "100"),
            ("PRISM_LOG", "warn"),
        ],
    )
}

/// Cluster `one` with environment fat in namespace shop-fat, project shop,
/// application web (`replicas` pods in fat).
fn world(api: &Api, k: &KubeCluster, replicas: i64) {
    k.kubectl(&["create", "namespace", "shop-fat"]);
    api.ok(
        "POST",
        "/api/v1/clusters",
        Some(json!({"name": "one", "kubeconfig": k.kubeconfig_text()})),
    );
    api.ok(
        "PATCH",
        "/api/v1/environments/fat",
        Some(json!({"cluster": "one", "namespace": "shop-fat"})),
    );
    api.ok("POST", "/api/v1/projects", Some(json!({"name": "shop"})));
    api.ok("POST", "/api/v1/applications", Some(json!({"project": "shop", "name": "web", "git_url": "https://git.example/web.git", "template_settings": {"progress_deadline_seconds": 30, "port": 8080}})));
    api.ok("PUT", "/api/v1/applications/web/settings/fat", Some(json!({"replicas": replicas, "cpu_request": "100m", "cpu_limit": "500m", "memory_request": "64Mi", "memory_limit": "128Mi", "env_vars": {}})));
}

/// Promotes `release` into fat and starts its deploy; the deploy's id.
fn start_deploy(api: &Api, release: &str) -> i64 {
    api.ok(
        "POST",
        &format!("/api/v1/releases/{release}/actions/promote"),
        Some(json!({"environment": "fat"})),
    );
    let d = api.ok(
        "POST",
        &format!("/api/v1/releases/{release}/deploys"),
        Some(json!({"environment": "fat"})),
    );
    d["id"].as_i64().unwrap()
}

fn deploy(api: &Api, id: i64) -> Value {
    api.ok("GET", &format!("/api/v1/deploys/{id}"), None)
}

fn settled(api: &Api, id: i64) -> Value {
    let mut last = Value::Null;
    wait(&format!("deploy {id} to end"), 180, || {
        last = deploy(api, id);
        last["state"]
            .as_str()
            .is_some_and(|s| ["succeeded", "failed"].contains(&s))
    });
    last
}

/// Waits until the deploy's rollout is in `phase` (at canary step `step`).
fn rollout_at(api: &Api, id: i64, phase: &str, step: Option<u64>) -> Value {
    let mut last = Value::Null;
    wait(&format!("deploy {id} at {phase} {step:?}"), 120, || {
        last = deploy(api, id);
        let r = &last["rollout"];
        assert_ne!(last["state"], "failed", "{last}\n{:?}", api.events(id));
        r["phase"] == phase && step.is_none_or(|s| r["step"] == s)
    });
    last["rollout"].clone()
}

/// `(spec.replicas, image)` of a Deployment, or None when it does not exist.
fn deployment(k: &KubeCluster, name: &str) -> Option<(i64, String)> {
    let out = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&k.kubeconfig)
        .args(["get", "deployment", name, "-n", "shop-fat", "-o", "json"])
        .output()
        .unwrap();
    if !out.status.success() {
        assert!(String::from_utf8_lossy(&out.stderr).contains("NotFound"));
        return None;
    }
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    Some((
        d["spec"]["replicas"].as_i64().unwrap(),
        d["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap()
            .to_owned(),
    ))
}

fn service_selector(k: &KubeCluster, name: &str) -> Value {
    let s: Value = serde_json::from_str(&k.kubectl(&["get", "svc", name, "-n", "shop-fat", "-o", "json"])).unwrap();
    s["spec"]["selector"].clone()
}

#[test]
fn canary_steps_through_replica_shares_with_gates_pauses_aborts_and_survives_a_kill() {
    let mut k = KubeCluster::up();
    let metrics = MetricsStack::start();
    let mut prism = server();
    let api = Api::login(&prism.url, "admin", ADMIN_PASSWORD);
    world(&api, &k, 4);

    // 1. The first release rolls out as today (nothing to compare a canary with).
    let r1 = api.built_release("web", "registry.example/web:r1");
    let d1 = start_deploy(&api, &r1);
    assert_eq!(settled(&api, d1)["state"], "succeeded", "{:?}", api.events(d1));
    assert_eq!(deployment(&k, "web"), Some((4, "registry.example/web:r1".into())));

    // 2. A canary with a metric gate needs the cluster's Prometheus first.
    let strategy = json!({"type": "canary", "steps": [
        {"weight": 25, "manual": true},
        {"weight": 50, "pause_seconds": 4, "gates": [{"name": "errors", "query": GATE_QUERY,
            "condition": "result < 0.01", "interval_seconds": 1, "count": 2}]},
        {"weight": 100, "manual": true}]});
    let path = "/api/v1/applications/web/environments/fat/rollout";
    let (s, e) = api.call("PUT", path, Some(strategy.clone()));
    assert_eq!((s, e["field"].as_str()), (422, Some("gates")), "{e}");
    let (s, e) = api.call(
        "PUT",
        path,
        Some(json!({"type": "canary", "steps": [{"weight": 60}, {"weight": 30}]})),
    );
    assert_eq!((s, e["field"].as_str()), (422, Some("steps[1].weight")), "{e}");
    api.ok(
        "PUT",
        "/api/v1/clusters/one/prometheus",
        Some(json!({"url": metrics.prometheus_url, "token": "prom-token-never-shown"})),
    );
    let shown = api.ok("GET", "/api/v1/clusters/one/prometheus", None);
    assert_eq!(shown["auth"], "bearer");
    assert!(!shown.to_string().contains("prom-token-never-shown"));
    let set = api.ok("PUT", path, Some(strategy));
    assert_eq!(set["strategy"]["type"], "canary");
    let healthy = "canary_error_rate{app=\"web\",track=\"canary\"} 0.001\n";
    metrics.push("shop", "web", healthy);
    metrics.wait_value("sum(canary_error_rate{app=\"web\",track=\"canary\"})", 0.001);

    // 3. The second release: step 1 runs one canary pod beside three stable
    //    ones and waits for a person; the Service selects both.
    let r2 = api.built_release("web", "registry.example/web:r2");
    let d2 = start_deploy(&api, &r2);
    let p = rollout_at(&api, d2, "checking", Some(0));
    assert_eq!(
        (p["stable_replicas"].as_i64(), p["new_replicas"].as_i64()),
        (Some(3), Some(1))
    );
    assert_eq!(deployment(&k, "web"), Some((3, "registry.example/web:r1".into())));
    assert_eq!(
        deployment(&k, "web-canary"),
        Some((1, "registry.example/web:r2".into()))
    );
    let pods: Value = serde_json::from_str(&k.kubectl(&[
        "get",
        "pods",
        "-n",
        "shop-fat",
        "-l",
        "prism.io/track=canary",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(pods["items"].as_array().unwrap().len(), 1);
    let selector = service_selector(&k, "web");
    for (key, v) in selector.as_object().unwrap() {
        assert_eq!(
            &pods["items"][0]["metadata"]["labels"][key], v,
            "the Service must select the canary pod"
        );
    }
    // The drift check knows both tracks: the stable Deployment's fewer
    // replicas are the rollout's doing, not a hand edit.
    let drift = api.ok("GET", "/api/v1/applications/web/environments/fat/drift", None);
    assert_eq!(
        (drift["drifted"].as_bool(), drift["rollout_deploy"].as_i64()),
        (Some(false), Some(d2)),
        "{drift}"
    );
    // A hand edit still is.
    k.kubectl(&[
        "set",
        "image",
        "deployment/web",
        "web=registry.example/web:hand",
        "-n",
        "shop-fat",
    ]);
    let drift = api.ok("GET", "/api/v1/applications/web/environments/fat/drift", None);
    assert_eq!(drift["drifted"], true, "{drift}");
    k.kubectl(&[
        "set",
        "image",
        "deployment/web",
        "web=registry.example/web:r1",
        "-n",
        "shop-fat",
    ]);
    let review = deploy(&api, d2);
    assert_eq!(review["rollout"]["strategy"]["type"], "canary");
    assert!(api
        .events(d2)
        .iter()
        .any(|e| e.contains("rolls out as a canary by replica share: 25% -> 50% -> 100%")));

    // 4. kill -9 mid-step: the restarted server resumes at the same step,
    //    never at all-new.
    prism.crash_and_restart();
    let api = Api::login(&prism.url, "admin", ADMIN_PASSWORD);
    std::thread::sleep(Duration::from_secs(4));
    let p = rollout_at(&api, d2, "checking", Some(0));
    assert_eq!(p["new_replicas"], 1);
    assert_eq!(deployment(&k, "web"), Some((3, "registry.example/web:r1".into())));
    assert_eq!(
        deployment(&k, "web-canary"),
        Some((1, "registry.example/web:r2".into()))
    );

    // 5. A tester may not steer it; an operator's pause holds it, resume goes on.
    api.ok(
        "POST",
        "/api/v1/users",
        Some(json!({"username": "tess", "password": "tess-password-123"})),
    );
    api.ok(
        "POST",
        "/api/v1/projects/shop/members",
        Some(json!({"username": "tess", "role": "tester"})),
    );
    let tess = Api::login(&prism.url, "tess", "tess-password-123");
    let (s, _) = tess.call("POST", &format!("/api/v1/deploys/{d2}/rollout/resume"), None);
    assert_eq!(s, 403);
    prism.login_admin();
    prism
        .run(&["rollout", "pause", &d2.to_string(), "--reason", "lunch"])
        .ok();
    wait("the pause to be taken", 10, || {
        deploy(&api, d2)["rollout"]["paused"] == true
    });
    let shown = prism.run(&["deploy", "show", &d2.to_string()]).ok();
    assert!(shown.stdout.contains("paused"), "{}", shown.stdout);
    api.ok(
        "POST",
        &format!("/api/v1/deploys/{d2}/rollout/resume"),
        Some(json!({"reason": "back"})),
    );

    // 6. Step 2 (half and half) holds for its pause while the gate measures
    //    a healthy canary twice; then 100%, then the stable Deployment takes
    //    the new version and the canary goes.
    wait("the 50% split", 60, || {
        deployment(&k, "web-canary") == Some((2, "registry.example/web:r2".into()))
            && deployment(&k, "web").is_some_and(|(n, _)| n == 2)
    });
    // kill -9 again, mid-step: it carries on from this step, not from the first.
    prism.crash_and_restart();
    let api = Api::login(&prism.url, "admin", ADMIN_PASSWORD);
    // Step 3 (all new) waits for a person. Then, with no node, the stable
    // Deployment's update to the new version cannot finish: kill -9 while
    // it finishes, and the canary keeps serving until the stable is ready.
    rollout_at(&api, d2, "checking", Some(2));
    assert_eq!(
        deployment(&k, "web-canary"),
        Some((4, "registry.example/web:r2".into()))
    );
    k.stop_sim();
    api.ok("POST", &format!("/api/v1/deploys/{d2}/rollout/resume"), None);
    wait("the stable given the new version", 60, || {
        deploy(&api, d2)["rollout"]["finishing_applied"] == true
    });
    // (A second crash within work of its own would quarantine the deploy,
    // which then sends traffic back: killed while it waits for the pods.)
    std::thread::sleep(Duration::from_secs(2));
    prism.crash_and_restart();
    let api = Api::login(&prism.url, "admin", ADMIN_PASSWORD);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(deploy(&api, d2)["rollout"]["phase"], "finishing");
    assert_eq!(
        deployment(&k, "web-canary"),
        Some((4, "registry.example/web:r2".into()))
    );
    k.start_sim(&[]);
    let done = settled(&api, d2);
    let events = api.events(d2);
    assert_eq!(done["state"], "succeeded", "{events:?}");
    assert!(
        events.iter().any(|e| e.contains("gates measured: errors: 0.001")),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.contains("step 3 of 3: 100% new: 4 canary pod(s), 0 stable pod(s)")),
        "{events:?}"
    );
    assert_eq!(deployment(&k, "web"), Some((4, "registry.example/web:r2".into())));
    assert_eq!(deployment(&k, "web-canary"), None);
    // The end state is a rolling deploy's: one Deployment of the application.
    let all: Value = serde_json::from_str(&k.kubectl(&[
        "get",
        "deployments",
        "-n",
        "shop-fat",
        "-l",
        "prism.io/application=web",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(all["items"].as_array().unwrap().len(), 1, "{all}");

    // 7. An unhealthy canary: the gate fails with its value and the
    //    condition, traffic goes back to the stable version at once, the
    //    deploy fails and the automatic rollback runs.
    metrics.push("shop", "web", "canary_error_rate{app=\"web\",track=\"canary\"} 0.2\n");
    metrics.wait_value("sum(canary_error_rate{app=\"web\",track=\"canary\"})", 0.2);
    let r3 = api.built_release("web", "registry.example/web:r3");
    let d3 = start_deploy(&api, &r3);
    rollout_at(&api, d3, "checking", Some(0));
    api.ok("POST", &format!("/api/v1/deploys/{d3}/rollout/resume"), None);
    let failed = settled(&api, d3);
    assert_eq!(failed["failure_kind"], "gate", "{failed}");
    let err = failed["error"].as_str().unwrap();
    assert!(err.contains("returned 0.2") && err.contains("result < 0.01"), "{err}");
    assert_eq!(deployment(&k, "web-canary"), None);
    assert_eq!(deployment(&k, "web"), Some((4, "registry.example/web:r2".into())));
    let rollback = api.ok("GET", "/api/v1/deploys?application=web&limit=1", None)[0].clone();
    assert_eq!(
        (rollback["kind"].as_str(), rollback["rollback_of"].as_i64()),
        (Some("rollback"), Some(d3))
    );
    assert_eq!(settled(&api, rollback["id"].as_i64().unwrap())["state"], "succeeded");

    // 8. A person aborts at step 1.
    let r4 = api.built_release("web", "registry.example/web:r4");
    let d4 = start_deploy(&api, &r4);
    rollout_at(&api, d4, "checking", Some(0));
    prism
        .run(&["rollout", "abort", &d4.to_string(), "--reason", "wrong build"])
        .ok();
    let aborted = settled(&api, d4);
    assert_eq!(aborted["failure_kind"], "aborted", "{aborted}");
    assert_eq!(deployment(&k, "web-canary"), None);
    assert_eq!(deployment(&k, "web"), Some((4, "registry.example/web:r2".into())));
    let audit = api.ok("GET", "/api/v1/audit?action=deploy.rollout_abort", None);
    assert!(audit.to_string().contains("wrong build"), "{audit}");

    // 9. Prometheus gone: its silence is inconclusive, never a pass.
    api.ok(
        "PUT",
        "/api/v1/clusters/one/prometheus",
        Some(json!({"url": format!("http://127.0.0.1:{}", prism_test_support::free_port())})),
    );
    api.ok(
        "PUT",
        path,
        Some(json!({"type": "canary", "steps": [{"weight": 50, "gates": [{"name": "errors", "query": GATE_QUERY,
            "condition": "result < 0.01", "interval_seconds": 1, "count": 3, "inconclusive_limit": 2}]}, {"weight": 100}]})),
    );
    let r5 = api.built_release("web", "registry.example/web:r5");
    let d5 = start_deploy(&api, &r5);
    let failed = settled(&api, d5);
    assert_eq!(failed["failure_kind"], "gate", "{failed}");
    assert!(failed["error"].as_str().unwrap().contains("inconclusive"), "{failed}");
    assert_eq!(deployment(&k, "web"), Some((4, "registry.example/web:r2".into())));

    // 10. A `web-canary` that is not Prism's (made by hand) is never taken
    //     over or deleted: the deploy fails naming it, traffic stays on r2.
    api.ok(
        "PUT",
        path,
        Some(json!({"type": "canary", "steps": [{"weight": 50}, {"weight": 100}]})),
    );
    k.kubectl(&[
        "create",
        "deployment",
        "web-canary",
        "--image=registry.example/other:1",
        "-n",
        "shop-fat",
    ]);
    let r6 = api.built_release("web", "registry.example/web:r6");
    let d6 = start_deploy(&api, &r6);
    let failed = settled(&api, d6);
    assert!(
        failed["error"].as_str().unwrap().contains("is not this application's"),
        "{failed}"
    );
    assert_eq!(
        deployment(&k, "web-canary"),
        Some((1, "registry.example/other:1".into()))
    );
    assert_eq!(deployment(&k, "web"), Some((4, "registry.example/web:r2".into())));
}

#[test]
fn blue_green_switches_the_service_keeps_the_old_version_and_switches_back() {
    let mut k = KubeCluster::up();
    let mut prism = server();
    let api = Api::login(&prism.url, "admin", ADMIN_PASSWORD);
    world(&api, &k, 2);
    let r1 = api.built_release("web", "registry.example/web:r1");
    let d1 = start_deploy(&api, &r1);
    assert_eq!(settled(&api, d1)["state"], "succeeded", "{:?}", api.events(d1));

    prism.login_admin();
    prism
        .run(&[
            "rollout",
            "set",
            "web",
            "--env",
            "fat",
            "--blue-green",
            "--preview",
            "--manual",
            "--keep-seconds",
            "8",
        ])
        .ok();
    let shown = prism.run(&["rollout", "show", "web", "--env", "fat"]).ok();
    assert!(
        shown
            .stdout
            .contains("blue-green by Service switch; old version kept 8 s; preview Service"),
        "{}",
        shown.stdout
    );

    // The new version comes up beside the old (no node for now: its pods
    // stay unready); the live Service still serves only the old one (pinned
    // to its release), the preview only the new.
    k.stop_sim();
    let r2 = api.built_release("web", "registry.example/web:r2");
    let d2 = start_deploy(&api, &r2);
    wait("the new colour applied", 60, || {
        deploy(&api, d2)["rollout"]["applied"] == true
    });
    assert_eq!(
        deployment(&k, &format!("web-{r2}")),
        Some((2, "registry.example/web:r2".into()))
    );
    assert_eq!(deployment(&k, "web"), Some((2, "registry.example/web:r1".into())));
    assert_eq!(service_selector(&k, "web")["prism.io/release"], r1.as_str());
    assert_eq!(service_selector(&k, "web-preview")["prism.io/release"], r2.as_str());

    // A promote before the new pods are ready waits for them, also across a
    // kill -9: the Service never points at pods that are not ready.
    api.ok("POST", &format!("/api/v1/deploys/{d2}/rollout/promote"), None);
    wait("the promote taken", 30, || {
        deploy(&api, d2)["rollout"]["promoted"] == true
    });
    prism.crash_and_restart();
    let api = Api::login(&prism.url, "admin", ADMIN_PASSWORD);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(deploy(&api, d2)["rollout"]["phase"], "starting");
    assert_eq!(service_selector(&k, "web")["prism.io/release"], r1.as_str());
    k.start_sim(&[]);

    // Ready: the Service switches in one apply (skipping the wait for a
    // person, as promoted); the old version stays for the delay.
    wait("the switch", 30, || {
        service_selector(&k, "web")["prism.io/release"] == r2.as_str()
    });
    assert_eq!(deployment(&k, "web"), Some((2, "registry.example/web:r1".into())));
    assert_eq!(deploy(&api, d2)["rollout"]["phase"], "keeping");
    let done = settled(&api, d2);
    assert_eq!(done["state"], "succeeded", "{:?}", api.events(d2));
    assert_eq!(
        deployment(&k, "web"),
        None,
        "the old version is removed after the delay"
    );
    assert_eq!(
        deployment(&k, &format!("web-{r2}")),
        Some((2, "registry.example/web:r2".into()))
    );

    // The next release is checked by a metric gate on the preview track and
    // switches by itself; aborting within the delay switches straight back
    // and removes the new colour.
    let metrics = MetricsStack::start();
    metrics.push("shop", "web", "canary_error_rate{app=\"web\",track=\"preview\"} 0\n");
    metrics.wait_value("sum(canary_error_rate{app=\"web\",track=\"preview\"})", 0.0);
    api.ok(
        "PUT",
        "/api/v1/clusters/one/prometheus",
        Some(json!({"url": metrics.prometheus_url})),
    );
    let strategy = json!({"type": "blue-green", "scale_down_delay_seconds": 600, "gates": [{"name": "errors",
        "query": GATE_QUERY, "condition": "result < 0.01", "interval_seconds": 1, "count": 2}]});
    let file = prism.scratch.join("bg.json");
    std::fs::write(&file, strategy.to_string()).unwrap();
    prism
        .run(&[
            "rollout",
            "set",
            "web",
            "--env",
            "fat",
            "--file",
            file.to_str().unwrap(),
        ])
        .ok();
    let r3 = api.built_release("web", "registry.example/web:r3");
    let d3 = start_deploy(&api, &r3);
    rollout_at(&api, d3, "keeping", None);
    assert_eq!(service_selector(&k, "web")["prism.io/release"], r3.as_str());
    let events = api.events(d3);
    assert_eq!(
        events
            .iter()
            .filter(|e| e.contains("gates measured: errors: 0"))
            .count(),
        2,
        "{events:?}"
    );
    assert_eq!(
        deployment(&k, &format!("web-{r2}")),
        Some((2, "registry.example/web:r2".into()))
    );
    prism.crash_and_restart();
    let api = Api::login(&prism.url, "admin", ADMIN_PASSWORD);
    rollout_at(&api, d3, "keeping", None);
    api.ok(
        "POST",
        &format!("/api/v1/deploys/{d3}/rollout/abort"),
        Some(json!({"reason": "errors"})),
    );
    let failed = settled(&api, d3);
    assert_eq!(failed["failure_kind"], "aborted", "{failed}");
    assert_eq!(service_selector(&k, "web")["prism.io/release"], r2.as_str());
    assert_eq!(deployment(&k, &format!("web-{r3}")), None);
    let rollback = api.ok("GET", "/api/v1/deploys?application=web&limit=1", None)[0].clone();
    assert_eq!(settled(&api, rollback["id"].as_i64().unwrap())["state"], "succeeded");
    assert_eq!(service_selector(&k, "web")["prism.io/release"], r2.as_str());

    // The release that serves, deployed again and aborted: its colour is the
    // one serving, and it is never deleted.
    let again = api.ok(
        "POST",
        &format!("/api/v1/releases/{r2}/deploys"),
        Some(json!({"environment": "fat"})),
    )["id"]
        .as_i64()
        .unwrap();
    rollout_at(&api, again, "keeping", None);
    api.ok("POST", &format!("/api/v1/deploys/{again}/rollout/abort"), None);
    assert_eq!(settled(&api, again)["failure_kind"], "aborted");
    assert_eq!(service_selector(&k, "web")["prism.io/release"], r2.as_str());
    assert_eq!(
        deployment(&k, &format!("web-{r2}")),
        Some((2, "registry.example/web:r2".into()))
    );
}
