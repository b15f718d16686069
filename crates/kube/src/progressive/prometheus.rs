//! Asks a Prometheus server one instant query for a metric gate.

use std::time::Duration;

use serde_json::Value;

use super::gate::Measurement;

/// How to reach a cluster's Prometheus. Credentials are secrets: never logged.
#[derive(Clone)]
pub struct PrometheusEndpoint {
    pub url: String,
    pub auth: PrometheusAuth,
}

#[derive(Clone)]
pub enum PrometheusAuth {
    None,
    Basic { username: String, password: String },
    Bearer(String),
}

impl std::fmt::Debug for PrometheusEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = match self.auth {
            PrometheusAuth::None => "none",
            PrometheusAuth::Basic { .. } => "basic <redacted>",
            PrometheusAuth::Bearer(_) => "bearer <redacted>",
        };
        f.debug_struct("PrometheusEndpoint")
            .field("url", &self.url)
            .field("auth", &auth)
            .finish()
    }
}

impl PrometheusEndpoint {
    /// Runs `query` at the current time. Anything but exactly one finite
    /// number is inconclusive, with the reason.
    pub async fn measure(&self, http: &reqwest::Client, query: &str, timeout: Duration) -> Measurement {
        let url = format!("{}/api/v1/query", self.url.trim_end_matches('/'));
        let mut req = http.get(&url).query(&[("query", query)]).timeout(timeout);
        req = match &self.auth {
            PrometheusAuth::None => req,
            PrometheusAuth::Basic { username, password } => req.basic_auth(username, Some(password)),
            PrometheusAuth::Bearer(t) => req.bearer_auth(t),
        };
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Measurement::Inconclusive(format!("Prometheus did not answer: {}", e.without_url())),
        };
        let status = resp.status();
        let body: Value = match resp.json().await {
            Ok(v) => v,
            Err(_) => return Measurement::Inconclusive(format!("Prometheus answered {status} without JSON")),
        };
        if body["status"] != "success" {
            let err = body["error"].as_str().unwrap_or("unknown error");
            return Measurement::Inconclusive(format!("Prometheus refused the query ({status}): {err}"));
        }
        read_result(&body["data"])
    }
}

/// The one number in an instant query's `data`.
pub fn read_result(data: &Value) -> Measurement {
    let sample = match data["resultType"].as_str() {
        Some("scalar") => data["result"].clone(),
        Some("vector") => {
            let series = data["result"].as_array().cloned().unwrap_or_default();
            match series.len() {
                0 => return Measurement::Inconclusive("the query returned no data".into()),
                1 => series[0]["value"].clone(),
                n => {
                    return Measurement::Inconclusive(format!(
                        "the query returned {n} series; a gate needs one (aggregate it, e.g. sum(...))"
                    ))
                }
            }
        }
        other => return Measurement::Inconclusive(format!("the query returned a {other:?}, not a number")),
    };
    let value = sample[1].as_str().and_then(|s| s.parse::<f64>().ok());
    match value {
        Some(v) if v.is_finite() => Measurement::Value(v),
        Some(v) => Measurement::Inconclusive(format!("the query returned {v}")),
        None => Measurement::Inconclusive("the query's sample is not a number".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_number_or_inconclusive() {
        assert_eq!(
            read_result(&json!({"resultType": "vector", "result": [{"metric": {}, "value": [1.0, "0.25"]}]})),
            Measurement::Value(0.25)
        );
        assert_eq!(
            read_result(&json!({"resultType": "scalar", "result": [1.0, "3"]})),
            Measurement::Value(3.0)
        );
        assert!(
            matches!(read_result(&json!({"resultType": "vector", "result": []})), Measurement::Inconclusive(m) if m.contains("no data"))
        );
        assert!(
            matches!(read_result(&json!({"resultType": "vector", "result": [{"value": [1, "1"]}, {"value": [1, "2"]}]})), Measurement::Inconclusive(m) if m.contains("2 series"))
        );
        assert!(matches!(
            read_result(&json!({"resultType": "vector", "result": [{"value": [1, "NaN"]}]})),
            Measurement::Inconclusive(_)
        ));
        assert!(matches!(
            read_result(&json!({"resultType": "matrix", "result": []})),
            Measurement::Inconclusive(_)
        ));
    }

    #[test]
    fn credentials_never_show() {
        let e = PrometheusEndpoint {
            url: "http://prom".into(),
            auth: PrometheusAuth::Basic {
                username: "u".into(),
                password: "pw-42".into(),
            },
        };
        assert!(!format!("{e:?}").contains("pw-42"));
    }
}
