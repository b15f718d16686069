//! The rollout watch (`Cluster::wait_for_change`) against a real v1.20.2
//! API server: a deploy in progress waits on a watch of its object instead
//! of reading it ten times a second (the polling of 32 deploys at once was
//! the API server's main load at 500 applications; `prism-bench deploy`).
//! The wait ends when the object changes or is deleted, and not before: an
//! object nobody touches keeps it waiting until the time given.

use std::time::{Duration, Instant};

use prism_kube::{Cluster, ClusterConfig};
use prism_manifests::ObjectRef;
use prism_test_support::kube::KubeCluster;

/// The cluster from the test cluster's kubeconfig (a token and the CA).
async fn connect(k: &KubeCluster) -> Cluster {
    use base64::Engine;
    use secrecy::ExposeSecret;
    prism_kube::install_crypto_provider();
    let kc = kube::config::Kubeconfig::from_yaml(&k.kubeconfig_text()).expect("kubeconfig");
    let cluster = kc.clusters[0].cluster.clone().expect("a cluster");
    let ca = cluster.certificate_authority_data.expect("the CA");
    let ca = base64::engine::general_purpose::STANDARD.decode(ca).expect("base64 CA");
    let user = kc.auth_infos[0].auth_info.clone().expect("a user");
    Cluster::connect(ClusterConfig {
        api_url: cluster.server.expect("a server"),
        ca_cert_pem: Some(String::from_utf8(ca).expect("a PEM CA")),
        token: user.token.map(|t| t.expose_secret().to_owned()),
        insecure_skip_tls_verify: false,
        guard: prism_netguard::Guard::new(Default::default()),
    })
    .await
    .expect("connect")
}

fn version(live: &serde_json::Value) -> String {
    live.pointer("/metadata/resourceVersion")
        .and_then(|v| v.as_str())
        .expect("a resourceVersion")
        .to_owned()
}

/// Runs kubectl with `args` on another thread after `ms` milliseconds (while
/// the test waits on a watch).
fn kubectl_after(k: &KubeCluster, ms: u64, args: &'static [&'static str]) -> std::thread::JoinHandle<()> {
    let kubeconfig = k.kubeconfig.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(ms));
        let st = std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(args)
            .status()
            .unwrap();
        assert!(st.success(), "kubectl {args:?}");
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_waits_for_the_object_to_change_and_no_longer() {
    let k = KubeCluster::up_without_node();
    let ns = "watch-test";
    k.kubectl(&["create", "namespace", ns]);
    k.kubectl(&[
        "-n",
        ns,
        "create",
        "configmap",
        "settings",
        "--from-literal=colour=blue",
    ]);
    let cluster = connect(&k).await;
    let r = ObjectRef {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some(ns.into()),
        name: "settings".into(),
    };

    // Untouched: the wait lasts the time given, and says nothing changed.
    let live = cluster.get(&r).await.unwrap().expect("the configmap");
    let started = Instant::now();
    let changed = cluster
        .wait_for_change(&r, &version(&live), Duration::from_secs(2))
        .await
        .unwrap();
    assert!(!changed, "nothing changed the configmap");
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "waited {:?}, not the 2 s given",
        started.elapsed()
    );

    // Another object changing in the namespace does not end it either.
    let live = cluster.get(&r).await.unwrap().expect("the configmap");
    let other = kubectl_after(
        &k,
        300,
        &[
            "-n",
            "watch-test",
            "create",
            "configmap",
            "unrelated",
            "--from-literal=a=b",
        ],
    );
    let changed = cluster
        .wait_for_change(&r, &version(&live), Duration::from_secs(2))
        .await
        .unwrap();
    other.join().unwrap();
    assert!(!changed, "only another object changed");

    // Changed while waiting: the wait ends with it, long before the time given.
    let live = cluster.get(&r).await.unwrap().expect("the configmap");
    let patcher = kubectl_after(
        &k,
        500,
        &[
            "-n",
            "watch-test",
            "patch",
            "configmap",
            "settings",
            "-p",
            r#"{"data":{"colour":"green"}}"#,
        ],
    );
    let started = Instant::now();
    let changed = cluster
        .wait_for_change(&r, &version(&live), Duration::from_secs(60))
        .await
        .unwrap();
    patcher.join().unwrap();
    assert!(changed, "the patch is a change");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the wait ended with the change, not at its end ({:?})",
        started.elapsed()
    );
    let now = cluster.get(&r).await.unwrap().expect("the configmap");
    assert_eq!(now.pointer("/data/colour").and_then(|v| v.as_str()), Some("green"));

    // A change made between the read and the watch is not missed: the watch
    // starts from the version read.
    let before = version(&now);
    k.kubectl(&[
        "-n",
        ns,
        "patch",
        "configmap",
        "settings",
        "-p",
        r#"{"data":{"colour":"red"}}"#,
    ]);
    let started = Instant::now();
    assert!(
        cluster
            .wait_for_change(&r, &before, Duration::from_secs(60))
            .await
            .unwrap(),
        "the change after the version read"
    );
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());

    // Deleted while waiting: that ends it too.
    let live = cluster.get(&r).await.unwrap().expect("the configmap");
    k.kubectl(&["-n", ns, "delete", "configmap", "settings"]);
    assert!(cluster
        .wait_for_change(&r, &version(&live), Duration::from_secs(60))
        .await
        .unwrap());
    assert!(cluster.get(&r).await.unwrap().is_none());
}
