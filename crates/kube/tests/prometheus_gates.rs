//! Metric gates against a real Prometheus (Debian's `prometheus`) scraping a
//! real Pushgateway (Debian's `prometheus-pushgateway`) into which the test
//! pushes the error rate a canary is judged on.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prism_kube::progressive::gate::{Condition, GateTally, GateVerdict, Measurement, MetricGate};
use prism_kube::progressive::prometheus::{PrometheusAuth, PrometheusEndpoint};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Stack {
    _gateway: Killed,
    _prometheus: Killed,
    _dir: tempfile::TempDir,
    gateway: String,
    prometheus: String,
}

fn ensure(binary: &str, package: &str) {
    if Command::new("which")
        .arg(binary)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
    {
        return;
    }
    let st = Command::new("apt-get")
        .args(["install", "-y", "-q", package])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .unwrap();
    assert!(st.success(), "installing {package}");
}

async fn start() -> Stack {
    ensure("prometheus", "prometheus");
    ensure("prometheus-pushgateway", "prometheus-pushgateway");
    let dir = tempfile::tempdir().unwrap();
    let (gw_port, prom_port) = (free_port(), free_port());
    let gateway = Killed(
        Command::new("prometheus-pushgateway")
            .arg(format!("--web.listen-address=127.0.0.1:{gw_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             scrape_configs:\n  - job_name: pushgateway\n    honor_labels: true\n    static_configs: [{{targets: ['127.0.0.1:{gw_port}']}}]\n"
        ),
    )
    .unwrap();
    let prometheus = Killed(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let s = Stack {
        _gateway: gateway,
        _prometheus: prometheus,
        _dir: dir,
        gateway: format!("http://127.0.0.1:{gw_port}"),
        prometheus: format!("http://127.0.0.1:{prom_port}"),
    };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    for url in [format!("{}/-/ready", s.prometheus), format!("{}/-/ready", s.gateway)] {
        while !http
            .get(&url)
            .send()
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false)
        {
            assert!(Instant::now() < deadline, "{url} not ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    s
}

async fn push(s: &Stack, track: &str, rate: f64) {
    let body = format!("canary_error_rate{{app=\"web\",track=\"{track}\"}} {rate}\n");
    let r = reqwest::Client::new()
        .put(format!("{}/metrics/job/gate-test/track/{track}", s.gateway))
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

async fn measured_eventually(p: &PrometheusEndpoint, q: &str, want: f64) -> Measurement {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = p.measure(&http, q, Duration::from_secs(5)).await;
        if m == Measurement::Value(want) || Instant::now() > deadline {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn gate(query: &str) -> MetricGate {
    MetricGate {
        name: "errors".into(),
        query: query.into(),
        condition: "result < 0.01".into(),
        interval_seconds: 1,
        count: 2,
        failure_limit: 1,
        inconclusive_limit: 2,
    }
}

#[tokio::test]
async fn healthy_canary_passes_unhealthy_fails_with_its_value_and_silence_is_inconclusive() {
    let s = start().await;
    push(&s, "canary", 0.002).await;
    let prom = PrometheusEndpoint {
        url: s.prometheus.clone(),
        auth: PrometheusAuth::None,
    };
    let q = "sum(canary_error_rate{app=\"web\",track=\"canary\"})";
    let g = gate(q);
    let c: Condition = g.validate("gate").unwrap();
    let mut tally = GateTally::default();
    let m = measured_eventually(&prom, q, 0.002).await;
    assert_eq!(m, Measurement::Value(0.002));
    assert_eq!(tally.record(&g, &c, m.clone()), GateVerdict::Measuring);
    assert_eq!(tally.record(&g, &c, m), GateVerdict::Passed);

    // The canary turns bad: the gate fails with the value it saw.
    push(&s, "canary", 0.2).await;
    let m = measured_eventually(&prom, q, 0.2).await;
    let mut tally = GateTally::default();
    assert_eq!(
        tally.record(&g, &c, m),
        GateVerdict::Failed {
            value: 0.2,
            condition: "result < 0.01".into()
        }
    );

    // A metric nobody pushed: no data, inconclusive.
    let http = reqwest::Client::new();
    let none = prom
        .measure(&http, "canary_error_rate{app=\"nope\"}", Duration::from_secs(5))
        .await;
    assert!(
        matches!(none, Measurement::Inconclusive(ref r) if r.contains("no data")),
        "{none:?}"
    );
    // A query Prometheus refuses: inconclusive with its error.
    let bad = prom.measure(&http, "sum(", Duration::from_secs(5)).await;
    assert!(
        matches!(bad, Measurement::Inconclusive(ref r) if r.contains("refused")),
        "{bad:?}"
    );
}

#[tokio::test]
async fn an_unreachable_prometheus_is_inconclusive() {
    let port = free_port();
    let prom = PrometheusEndpoint {
        url: format!("http://127.0.0.1:{port}"),
        auth: PrometheusAuth::Bearer("tok-never-shown".into()),
    };
    let m = prom
        .measure(&reqwest::Client::new(), "up", Duration::from_secs(2))
        .await;
    match m {
        Measurement::Inconclusive(reason) => {
            assert!(reason.contains("did not answer"), "{reason}");
            assert!(!reason.contains("tok-never-shown"));
        }
        other => panic!("{other:?}"),
    }
}
