//! Signing in to the web console the way a browser does, with a plain HTTP
//! client (no redirects followed): the login page sets a CSRF cookie and
//! draws the same token into its form; the form sent back with both sets
//! the session cookie. Shared by the tests that post console forms without
//! a browser.

use reqwest::StatusCode;

/// `name=value` of the cookie `name` that `resp` sets; panics without one.
pub fn cookie(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("no {name} cookie"))
        .to_owned()
}

/// The value of the first `name="csrf"` field of a page.
pub fn csrf_in(html: &str) -> String {
    hidden_field(html, "<", "csrf")
}

/// The value of the hidden field `name` in the first form after `marker` in `html`.
pub fn hidden_field(html: &str, marker: &str, name: &str) -> String {
    let from = html.find(marker).unwrap_or_else(|| panic!("no {marker} in the page"));
    let field = format!("name=\"{name}\" value=\"");
    let at = from + html[from..].find(&field).unwrap_or_else(|| panic!("no {name} field")) + field.len();
    html[at..at + html[at..].find('"').unwrap()].to_owned()
}

/// Signs `user` in through the login form at `base`; the session cookie
/// (`prism_session=...`). `http` must not follow redirects.
pub async fn session(http: &reqwest::Client, base: &str, user: &str, password: &str) -> String {
    let page = http.get(format!("{base}/login")).send().await.unwrap();
    let login_cookie = cookie(&page, "prism_login_csrf");
    let token = csrf_in(&page.text().await.unwrap());
    let r = http
        .post(format!("{base}/login"))
        .header("cookie", login_cookie)
        .form(&[("csrf", token.as_str()), ("username", user), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{user} signs in");
    cookie(&r, "prism_session")
}

/// A client that does not follow redirects (a form's answer is the redirect).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}
