//! A blocking client of a running server's REST API, logged in as one user
//! (an API token from `/api/v1/auth/token`), for end-to-end tests.

use std::time::Duration;

use serde_json::{json, Value};

pub struct Api {
    base: String,
    pub token: String,
    client: reqwest::blocking::Client,
}

impl Api {
    /// Logs `user` in at `base` (`http://127.0.0.1:PORT`).
    pub fn login(base: &str, user: &str, password: &str) -> Api {
        let mut api = Api {
            base: base.trim_end_matches('/').to_owned(),
            token: String::new(),
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        };
        let (s, v) = api.call(
            "POST",
            "/api/v1/auth/token",
            Some(json!({"username": user, "password": password})),
        );
        assert_eq!(s, 201, "logging {user} in: {v}");
        api.token = v["secret"].as_str().unwrap().to_owned();
        api
    }

    /// The status and the JSON answer (a text answer as a JSON string).
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        if !self.token.is_empty() {
            req = req.bearer_auth(&self.token);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().unwrap();
        let s = r.status().as_u16();
        let text = r.text().unwrap_or_default();
        (s, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// The answer of a call that must succeed.
    pub fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (s, v) = self.call(method, path, body);
        assert!((200..300).contains(&s), "{method} {path} -> {s}: {v}");
        v
    }

    /// A release of `app` with a recorded build of `image`; returns its id.
    pub fn built_release(&self, app: &str, image: &str) -> String {
        let r = self.ok(
            "POST",
            "/api/v1/releases",
            Some(json!({"application": app, "git_ref": "main", "change_note": "e2e"})),
        );
        let id = r["id"].as_str().unwrap().to_owned();
        self.ok(
            "POST",
            &format!("/api/v1/releases/{id}/actions/start_build"),
            Some(json!({})),
        );
        self.ok(
            "POST",
            &format!("/api/v1/releases/{id}/actions/build_succeeded"),
            Some(json!({"image_ref": image, "commit_sha": "abcdef1"})),
        );
        id
    }

    /// A deploy's steps so far, as `step: message` lines.
    pub fn events(&self, id: i64) -> Vec<String> {
        self.ok("GET", &format!("/api/v1/deploys/{id}/events"), None)
            .as_array()
            .unwrap()
            .iter()
            .map(|e| format!("{}: {}", e["step"].as_str().unwrap(), e["message"].as_str().unwrap()))
            .collect()
    }
}
