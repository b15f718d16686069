//! A real Prometheus (Debian's `prometheus`) scraping a real Pushgateway
//! (Debian's `prometheus-pushgateway`) every second, on loopback, stopped on
//! drop: tests push the metric a rollout's gate is judged on.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct MetricsStack {
    gateway: Child,
    prometheus: Child,
    _dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT`
    pub gateway_url: String,
    pub prometheus_url: String,
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

impl MetricsStack {
    pub fn start() -> MetricsStack {
        ensure("prometheus", "prometheus");
        ensure("prometheus-pushgateway", "prometheus-pushgateway");
        let dir = tempfile::tempdir().unwrap();
        let (gw_port, prom_port) = (crate::free_port(), crate::free_port());
        let gateway = Command::new("prometheus-pushgateway")
            .arg(format!("--web.listen-address=127.0.0.1:{gw_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
                 scrape_configs:\n  - job_name: pushgateway\n    honor_labels: true\n    static_configs: [{{targets: ['127.0.0.1:{gw_port}']}}]\n"
            ),
        )
        .unwrap();
        let prometheus = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let s = MetricsStack {
            gateway,
            prometheus,
            _dir: dir,
            gateway_url: format!("http://127.0.0.1:{gw_port}"),
            prometheus_url: format!("http://127.0.0.1:{prom_port}"),
        };
        for url in [
            format!("{}/-/ready", s.prometheus_url),
            format!("{}/-/ready", s.gateway_url),
        ] {
            crate::wait_for(&url, Duration::from_secs(30), || {
                reqwest::blocking::get(&url).is_ok_and(|r| r.status().is_success())
            });
        }
        s
    }

    /// Replaces the group `job`/`group`'s metrics with `text` (exposition format).
    pub fn push(&self, job: &str, group: &str, text: &str) {
        let r = reqwest::blocking::Client::new()
            .put(format!("{}/metrics/job/{job}/group/{group}", self.gateway_url))
            .body(text.to_owned())
            .send()
            .unwrap();
        assert!(r.status().is_success(), "push: {}", r.status());
    }

    /// Waits until Prometheus answers `query` with `value` (it scrapes every second).
    pub fn wait_value(&self, query: &str, value: f64) {
        let url = format!("{}/api/v1/query", self.prometheus_url);
        crate::wait_for(&format!("{query} == {value}"), Duration::from_secs(30), || {
            reqwest::blocking::Client::new()
                .get(&url)
                .query(&[("query", query)])
                .send()
                .ok()
                .and_then(|r| r.json::<serde_json::Value>().ok())
                .and_then(|v| v["data"]["result"][0]["value"][1].as_str().map(String::from))
                .and_then(|s| s.parse::<f64>().ok())
                == Some(value)
        });
    }
}

impl Drop for MetricsStack {
    fn drop(&mut self) {
        for c in [&mut self.gateway, &mut self.prometheus] {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
