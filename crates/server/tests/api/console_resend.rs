//! Console forms sent twice (issue 15 item 1, the console's side): the
//! "new release" form drawn with its own key (`idem`) makes one release
//! however often it is sent: again after the answer was lost, or twice at
//! the same moment (a double click); each sending is sent on to the same
//! release's page. The key sent with other values is refused and makes
//! nothing; a form without a key behaves as before (each sending is a new
//! request), which shows it is the key that does the work.

use prism_test_support::console_login::{self, hidden_field as field};
use reqwest::StatusCode;

use crate::both_backends;
use crate::harness::{TestApp, PASSWORD};

/// A signed-in browser: no redirects followed, the session cookie.
struct Browser {
    http: reqwest::Client,
    base: String,
    session: String,
}

impl Browser {
    async fn sign_in(app: &TestApp, user: &str) -> Browser {
        let http = console_login::client();
        let session = console_login::session(&http, &app.base, user, PASSWORD).await;
        Browser {
            session,
            http,
            base: app.base.clone(),
        }
    }

    async fn page(&self, path: &str) -> String {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.session)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "GET {path}");
        resp.text().await.unwrap()
    }

    /// The release form's hidden fields, as a fresh page draws them.
    async fn release_form(&self) -> (String, String) {
        let html = self.page("/releases").await;
        (
            field(&html, "id=\"create-release\"", "csrf"),
            field(&html, "id=\"create-release\"", "idem"),
        )
    }

    /// Sends the release form; the status and where it sends the browser.
    async fn create(&self, fields: &[(&str, &str)]) -> (StatusCode, String) {
        let resp = self
            .http
            .post(format!("{}/releases", self.base))
            .header("cookie", &self.session)
            .form(fields)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let shown = location.unwrap_or(resp.text().await.unwrap());
        (status, shown)
    }
}

fn pairs<'a>(form: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    form.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

both_backends!(a_release_form_sent_twice_makes_one_release, |app| {
    app.project_with_app("shop", "web").await;
    app.user("dana", Some("shop"), &["developer"]).await;
    let dana = Browser::sign_in(app, "dana").await;

    // Sent, then sent again (the first answer lost): one release, both
    // sendings shown its page.
    let (csrf, key) = dana.release_form().await;
    assert!(key.len() >= 32, "the form carries a fresh key: {key:?}");
    let form = |note: &'static str, key: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("idem", key.to_owned()),
            ("application", "web".to_owned()),
            ("git_ref", "main".to_owned()),
            ("change_note", note.to_owned()),
        ]
    };
    let first_form = form("sent twice", &key);
    let fields = pairs(&first_form);
    let (s, first) = dana.create(&fields).await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{first}");
    assert!(first.starts_with("/releases/r"), "{first}");
    let (s, again) = dana.create(&fields).await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{again}");
    assert_eq!(again, first, "the second sending shows the first one's release");
    assert_eq!(app.count("releases").await, 1);

    // The same key with other values: refused, nothing made.
    let other = form("something else", &key);
    let fields = pairs(&other);
    let (s, page) = dana.create(&fields).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(page.contains("already sent with other values"), "{page}");
    assert_eq!(app.count("releases").await, 1);

    // A double click: the same form twice at the same moment; one release,
    // both shown it.
    let (_, key2) = dana.release_form().await;
    assert_ne!(key2, key, "each page drawn has its own key");
    let twin = form("double click", &key2);
    let fields = pairs(&twin);
    let (a, b) = tokio::join!(dana.create(&fields), dana.create(&fields));
    assert_eq!(a.0, StatusCode::SEE_OTHER, "{}", a.1);
    assert_eq!(b.0, StatusCode::SEE_OTHER, "{}", b.1);
    assert_eq!(a.1, b.1, "both sendings show the same release");
    assert_ne!(a.1, first);
    assert_eq!(app.count("releases").await, 2);

    // A key that is no key: refused naming the field, nothing made.
    let bad = form("bad key", "two words");
    let fields = pairs(&bad);
    let (s, page) = dana.create(&fields).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(page.contains("the form&#x27;s key is not valid"), "{page}");
    assert_eq!(app.count("releases").await, 2);

    // Without a key each sending is a new request (as before): two releases.
    let keyless: Vec<(&str, &str)> = vec![
        ("csrf", csrf.as_str()),
        ("application", "web"),
        ("git_ref", "main"),
        ("change_note", "no key"),
    ];
    assert_eq!(dana.create(&keyless).await.0, StatusCode::SEE_OTHER);
    assert_eq!(dana.create(&keyless).await.0, StatusCode::SEE_OTHER);
    assert_eq!(app.count("releases").await, 4);
});
