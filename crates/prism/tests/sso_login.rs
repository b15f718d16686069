//! OpenID Connect login (issue 13 item 1) end to end with real parts: a
//! real `prism serve` and a real OpenID provider (the certified npm package
//! `oidc-provider`, test-support's `OidcProvider`, with a static client and
//! users whose groups the test changes). Checked: the login page offers the
//! provider; the authorization request carries state, nonce and an S256
//! challenge; a login creates the user with exactly the roles the group
//! rules grant; leaving a group takes the role away at the next login; a
//! callback whose state is not the login's, one without the login's cookie,
//! and one with the provider's error are refused and audited; a local user
//! of the same name is never taken over. Forged ID tokens (other key,
//! `alg: none`, HS256, audience, issuer, expiry, nonce) are refused in
//! `crates/identity/tests/oidc_tokens.rs`.

use std::time::Duration;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use prism_test_support::oidc::{login_with_http, OidcProvider};
use prism_test_support::process::{clean_command, prism, ADMIN_PASSWORD};
use prism_test_support::{Backend, ServerProcess, TestDb};
use serde_json::{json, Value};

const CLIENT: &str = "prism";
const CLIENT_SECRET: &str = "prism-client-secret-4f1c";

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn api(url: &str, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = client()
        .request(method.parse().unwrap(), format!("{url}{path}"))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().unwrap();
    let s = r.status().as_u16();
    (s, r.json().unwrap_or(Value::Null))
}

fn location(r: &reqwest::blocking::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// One browser's single sign-on: Prism's redirect, the provider's login
/// form, the callback; returns the client (holding Prism's session cookie)
/// and the callback's answer.
fn sso(url: &str, user: &str, password: &str) -> (reqwest::blocking::Client, reqwest::blocking::Response) {
    let browser = client();
    let start = browser.get(format!("{url}/auth/oidc/login")).send().unwrap();
    assert_eq!(start.status().as_u16(), 303, "{:?}", start.text());
    let authorize = location(&start);
    let q: std::collections::HashMap<String, String> = reqwest::Url::parse(&authorize)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["client_id"], CLIENT);
    assert_eq!(q["redirect_uri"], format!("{url}/auth/oidc/callback"));
    assert!(q["state"].len() >= 32 && q["nonce"].len() >= 32 && q["code_challenge"].len() >= 43);
    let back = login_with_http(&authorize, user, password);
    assert!(back.starts_with(&format!("{url}/auth/oidc/callback?")), "{back}");
    let answer = browser.get(&back).send().unwrap();
    (browser, answer)
}

fn roles(url: &str, admin: &str, user: &str) -> Vec<String> {
    let (_, members) = api(url, admin, "GET", "/api/v1/projects/shop/members", None);
    let mut r: Vec<String> = members
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["username"] == user)
        .map(|m| m["role"].as_str().unwrap().to_owned())
        .collect();
    r.sort();
    r
}

#[test]
fn people_sign_in_with_the_company_provider_and_their_groups_set_their_roles() {
    let mut server = ServerProcess::start_on(TestDb::start_blocking(Backend::Sqlite), "sso", &[]);
    let url = server.url.clone();
    let alice = |groups: Value| {
        json!({"alice": {"password": "alice-idp-pw", "email": "alice@example.com", "name": "Alice Ops", "groups": groups},
               "admin": {"password": "idp-admin-pw", "groups": ["platform"]},
               // Another subject at the provider under alice's name (renamed or reused).
               "mallory": {"password": "mallory-idp-pw", "preferred_username": "alice", "groups": ["shop-ops"]}})
    };
    let idp = OidcProvider::start(
        CLIENT,
        CLIENT_SECRET,
        &format!("{url}/auth/oidc/callback"),
        alice(json!(["shop-ops", "shop-dev"])),
    );
    server.pause();
    server
        .resume(&[
            ("PRISM_PUBLIC_URL", url.as_str()),
            ("PRISM_OIDC_ISSUER", idp.issuer.as_str()),
            ("PRISM_OIDC_CLIENT_ID", CLIENT),
            ("PRISM_OIDC_CLIENT_SECRET", CLIENT_SECRET),
            ("PRISM_OIDC_SCOPES", "profile email groups"),
            ("PRISM_OIDC_LABEL", "Example ID"),
        ])
        .unwrap();
    let (s, v) = {
        let r = client()
            .post(format!("{url}/api/v1/auth/token"))
            .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
            .send()
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().unwrap())
    };
    assert_eq!(s, 201, "{v}");
    let admin = v["secret"].as_str().unwrap().to_owned();
    api(&url, &admin, "POST", "/api/v1/projects", Some(json!({"name": "shop"})));
    let (s, v) = api(
        &url,
        &admin,
        "PUT",
        "/api/v1/directory/group-rules",
        Some(
            json!({"rules": [{"group": "shop-ops", "project": "shop", "role": "operator"},
                              {"group": "shop-dev", "project": "shop", "role": "developer"}]}),
        ),
    );
    assert_eq!(s, 200, "{v}");

    // The login page offers the provider.
    let page = client().get(format!("{url}/login")).send().unwrap().text().unwrap();
    assert!(
        page.contains("id=\"login-sso\"") && page.contains("Example ID"),
        "{page}"
    );

    // alice signs in: created with what her groups grant, a session that works.
    let (browser, answer) = sso(&url, "alice", "alice-idp-pw");
    assert_eq!(answer.status().as_u16(), 303, "{:?}", answer.text());
    assert_eq!(location(&answer), "/");
    let me: Value = browser.get(format!("{url}/api/v1/me")).send().unwrap().json().unwrap();
    assert_eq!(me["user"]["username"], "alice", "{me}");
    assert_eq!(me["user"]["source"], "oidc", "{me}");
    assert_eq!(roles(&url, &admin, "alice"), ["developer", "operator"]);
    let dashboard = browser.get(format!("{url}/")).send().unwrap();
    assert_eq!(dashboard.status().as_u16(), 200);
    // `prism login --sso`: the terminal shows a page and a code; alice, signed
    // in in her browser, approves; the command line gets a token of hers.
    let config = tempfile::tempdir().unwrap();
    let mut cli = clean_command()
        .env("PRISM_CONFIG_DIR", config.path())
        .env("NO_COLOR", "1")
        .args(["login", url.as_str(), "--sso", "--name", "laptop"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = BufReader::new(cli.stderr.take().unwrap());
    let page_url = format!("{url}/cli-login");
    let (mut saw_page, mut code) = (false, String::new());
    while code.is_empty() {
        let mut l = String::new();
        assert!(said.read_line(&mut l).unwrap() > 0, "prism login --sso ended early");
        let l = l.trim();
        if l == page_url {
            saw_page = true;
        } else if saw_page && l.len() == 9 && l.as_bytes()[4] == b'-' {
            code = l.to_owned();
        }
    }
    let csrf_of = |page: &str| {
        let at = page.find("name=\"csrf\" value=\"").expect("a form") + "name=\"csrf\" value=\"".len();
        page[at..].split('"').next().unwrap().to_owned()
    };
    // Nobody logged in: the page leads to the login (and the SSO button keeps where to go).
    let r = client().get(&page_url).send().unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let to = location(&r);
    assert_eq!(to, "/login?next=%2Fcli-login");
    let login_page = client().get(format!("{url}{to}")).send().unwrap().text().unwrap();
    let at = login_page
        .find("href=\"/auth/oidc/login?next=")
        .expect("the SSO link keeps next")
        + "href=\"".len();
    let sso_link = login_page[at..].split('"').next().unwrap().to_owned();
    // Signing in through that link ends on the page the login started from.
    let other = client();
    let start = other.get(format!("{url}{sso_link}")).send().unwrap();
    let back = login_with_http(&location(&start), "alice", "alice-idp-pw");
    let done = other.get(&back).send().unwrap();
    assert_eq!(done.status().as_u16(), 303);
    assert_eq!(
        format!("{url}{}", location(&done)),
        page_url,
        "back to the approval page"
    );
    // A code in the address is not taken: the page asks for it.
    let page = browser
        .get(format!("{page_url}?code={code}"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(page.contains("cli-login-code-form") && !page.contains(&code), "{page}");
    // alice types the code: the request is shown, and she approves it.
    let page = browser
        .post(format!("{url}/cli-login/check"))
        .form(&[
            ("csrf", csrf_of(&page).as_str()),
            ("code", code.to_lowercase().as_str()),
        ])
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(page.contains(&code) && page.contains("laptop"), "{page}");
    let done = browser
        .post(format!("{url}/cli-login"))
        .form(&[("csrf", csrf_of(&page).as_str()), ("code", code.as_str())])
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(done.contains("cli-login-approved"), "{done}");
    let out = cli.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("as alice"), "{stdout}");
    let who = prism(config.path(), &["whoami", "--output", "json"], None);
    assert_eq!(who.code, 0, "{who:?}");
    assert!(who.stdout.contains("\"alice\""), "{who:?}");
    // The same code again: nothing waits under it any more.
    let form = browser.get(&page_url).send().unwrap().text().unwrap();
    let again = browser
        .post(format!("{url}/cli-login/check"))
        .form(&[("csrf", csrf_of(&form).as_str()), ("code", code.as_str())])
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(again.contains("cli-login-unknown"), "{again}");

    // An admin ends alice's sessions at once (a developer may not).
    let (s, v) = api(&url, &admin, "DELETE", "/api/v1/users/alice/sessions", None);
    // (Two: her browser, and the one that came back to the approval page.)
    assert_eq!((s, v["ended"].as_u64()), (200, Some(2)), "{v}");
    assert_eq!(
        browser
            .get(format!("{url}/api/v1/me"))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    // Leaving shop-ops at the provider: the operator role is gone at the next login.
    idp.set_accounts(alice(json!(["shop-dev"])));
    let (_, answer) = sso(&url, "alice", "alice-idp-pw");
    assert_eq!(answer.status().as_u16(), 303);
    assert_eq!(roles(&url, &admin, "alice"), ["developer"]);
    let (_, audit) = api(&url, &admin, "GET", "/api/v1/audit?actor=alice", None);
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.iter().filter(|a| **a == "auth.login_sso").count() == 3 && actions.contains(&"directory.roles_synced"),
        "{actions:?}"
    );

    // A callback that is not this browser's login: refused, audited.
    let thief = client();
    thief.get(format!("{url}/auth/oidc/login")).send().unwrap();
    let r = thief
        .get(format!("{url}/auth/oidc/callback?code=stolen&state=not-the-state"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.text().unwrap().contains("state does not match"));
    let r = client()
        .get(format!("{url}/auth/oidc/callback?code=stolen&state=whatever"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.text().unwrap().contains("not started in this browser"));
    // The provider's error for this browser's own login: its code is shown,
    // never the description's text.
    let denied = client();
    let start = denied.get(format!("{url}/auth/oidc/login")).send().unwrap();
    let state: String = reqwest::Url::parse(&location(&start))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let r = denied
        .get(format!(
            "{url}/auth/oidc/callback?error=access_denied&error_description=%3Cb%3Ecall+0800%3C%2Fb%3E&state={state}"
        ))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let text = r.text().unwrap();
    assert!(text.contains("access_denied") && !text.contains("0800"), "{text}");
    // Audited: the two that came with this server's login cookie, not the anonymous one.
    let (_, failed) = api(&url, &admin, "GET", "/api/v1/audit?action=auth.sso_failed", None);
    assert_eq!(failed.as_array().unwrap().len(), 2, "{failed}");

    // Another subject under alice's name: not alice.
    let (_, answer) = sso(&url, "mallory", "mallory-idp-pw");
    assert_eq!(answer.status().as_u16(), 401);
    assert!(answer.text().unwrap().contains("may not sign in with single sign-on"));

    // The provider's "admin" is not Prism's local admin: never taken over.
    let (answer_browser, answer) = sso(&url, "admin", "idp-admin-pw");
    assert_eq!(answer.status().as_u16(), 401);
    assert!(answer.text().unwrap().contains("may not sign in with single sign-on"));
    assert_eq!(
        answer_browser
            .get(format!("{url}/api/v1/me"))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    server.stop();
}
