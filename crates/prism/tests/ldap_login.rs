//! Directory login (issue 13 item 2) end to end: a real `prism serve` with
//! PRISM_LDAP_* pointing at a real OpenLDAP server (test-support's `Slapd`,
//! Debian's slapd) holding alice (groups shop-ops, shop-dev) and bob
//! (shop-dev). Checked: the local admin still logs in (break-glass); group
//! rules are admin-only and name the field at fault; a directory user is
//! created at the first login with exactly the roles their groups grant,
//! and loses a role at the next login after leaving its group; a wrong
//! password, an unknown name and filter metacharacters are refused and
//! audited; a disabled directory user stays out; the console's session
//! works for a directory user; an unreachable directory is a 5xx, not a
//! failed login, and local users are unaffected.

use std::time::Duration;

use serde_json::{json, Value};

use prism_test_support::ldap::{self, Slapd};
use prism_test_support::process::ADMIN_PASSWORD;
use prism_test_support::{Backend, ServerProcess, TestDb};

struct Prism {
    server: ServerProcess,
}

impl Prism {
    fn call(&self, token: Option<&str>, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let mut req = client.request(method.parse().unwrap(), format!("{}{path}", self.server.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().unwrap();
        let s = r.status().as_u16();
        let text = r.text().unwrap_or_default();
        (s, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    fn token(&self, user: &str, password: &str) -> (u16, Option<String>) {
        let (s, v) = self.call(
            None,
            "POST",
            "/api/v1/auth/token",
            Some(json!({"username": user, "password": password})),
        );
        (s, v["secret"].as_str().map(String::from))
    }

    /// `user`'s roles in shop, as `role` words, read by the admin.
    fn roles(&self, admin: &str, user: &str) -> Vec<String> {
        let (s, v) = self.call(Some(admin), "GET", "/api/v1/projects/shop/members", None);
        assert_eq!(s, 200, "{v}");
        let mut roles: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["username"] == user)
            .map(|m| m["role"].as_str().unwrap().to_owned())
            .collect();
        roles.sort();
        roles
    }
}

fn directory_login(backend: Backend) {
    let slapd = Slapd::start();
    let url = slapd.url();
    let server = ServerProcess::start_on(
        TestDb::start_blocking(backend),
        "ldap-login",
        &[
            ("PRISM_LDAP_URL", url.as_str()),
            ("PRISM_LDAP_SECURITY", "plain"),
            ("PRISM_LDAP_BIND_DN", ldap::ADMIN_DN),
            ("PRISM_LDAP_BIND_PASSWORD", ldap::ADMIN_PASSWORD),
            ("PRISM_LDAP_USER_BASE", ldap::PEOPLE),
            (
                "PRISM_LDAP_USER_FILTER",
                "(&(objectClass=inetOrgPerson)(uid={username}))",
            ),
            ("PRISM_LDAP_GROUP_BASE", ldap::GROUPS),
        ],
    );
    let p = Prism { server };

    // The local admin logs in as before: the break-glass account.
    let (s, admin) = p.token("admin", ADMIN_PASSWORD);
    assert_eq!(s, 201);
    let admin = admin.unwrap();
    let a = Some(admin.as_str());
    p.call(a, "POST", "/api/v1/projects", Some(json!({"name": "shop"})));

    // Group rules: admins only, each checked.
    let rules = json!({"rules": [
        {"group": "shop-ops", "project": "shop", "role": "operator"},
        {"group": "shop-dev", "project": "shop", "role": "developer"},
    ]});
    for (body, field) in [
        (
            json!({"rules": [{"group": "x", "project": "nope", "role": "operator"}]}),
            "rules[0].project",
        ),
        (
            json!({"rules": [{"group": "x", "project": "shop", "role": "operator", "admin": true}]}),
            "rules[0]",
        ),
        (json!({"rules": [{"group": "", "admin": true}]}), "rules[0].group"),
    ] {
        let (s, v) = p.call(a, "PUT", "/api/v1/directory/group-rules", Some(body));
        assert_eq!((s, v["field"].as_str()), (422, Some(field)), "{v}");
    }
    let (s, v) = p.call(a, "PUT", "/api/v1/directory/group-rules", Some(rules.clone()));
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        p.call(a, "GET", "/api/v1/directory/group-rules", None).1,
        json!({"rules": [
            {"group": "shop-ops", "project": "shop", "role": "operator", "admin": false},
            {"group": "shop-dev", "project": "shop", "role": "developer", "admin": false},
        ]})
    );

    // alice: created at her first login, with what her two groups grant.
    let (s, alice) = p.token("alice", "alice-pw");
    assert_eq!(s, 201);
    let alice = alice.unwrap();
    assert_eq!(p.roles(&admin, "alice"), ["developer", "operator"]);
    let (s, v) = p.call(
        Some(&alice),
        "PUT",
        "/api/v1/directory/group-rules",
        Some(json!({"rules": []})),
    );
    assert_eq!(s, 403, "a directory user is no admin unless a rule says so: {v}");
    let (_, users) = p.call(a, "GET", "/api/v1/users", None);
    let entry = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "alice")
        .cloned()
        .unwrap();
    assert_eq!(
        (entry["source"].as_str(), entry["display_name"].as_str()),
        (Some("ldap"), Some("Alice Ops")),
        "{entry}"
    );

    // The console: the users page shows who came from the directory and the
    // rules; an admin adds a rule and removes it with its forms.
    let admin_cookie = session_cookie(&p, "admin", ADMIN_PASSWORD);
    let page = console_get(&p, &admin_cookie, "/admin/users");
    assert!(page.contains("data-group=\"shop-dev\""), "{page}");
    assert!(page.contains("alice <span class=\"badge\">directory</span>"), "{page}");
    let csrf = csrf_in(&page);
    let no_redirects = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirects
        .post(format!("{}/admin/directory/rules", p.server.url))
        .header("cookie", &admin_cookie)
        .form(&[("csrf", csrf.as_str()), ("group", "platform"), ("admin", "on")])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let (_, rules) = p.call(a, "GET", "/api/v1/directory/group-rules", None);
    assert_eq!(
        rules["rules"][2],
        json!({"group": "platform", "project": null, "role": null, "admin": true}),
        "{rules}"
    );
    let r = no_redirects
        .post(format!("{}/admin/directory/rules/2/delete", p.server.url))
        .header("cookie", &admin_cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let (_, rules) = p.call(a, "GET", "/api/v1/directory/group-rules", None);
    assert_eq!(rules["rules"].as_array().unwrap().len(), 2, "{rules}");
    // A rule naming no project is refused on the page, naming the field.
    let r = no_redirects
        .post(format!("{}/admin/directory/rules", p.server.url))
        .header("cookie", &admin_cookie)
        .form(&[("csrf", csrf.as_str()), ("group", "x"), ("role", "operator")])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    assert!(r.text().unwrap().contains("rules[2]"));

    // Refused: a wrong password, an unknown name, filter metacharacters.
    assert_eq!(p.token("bob", "wrong").0, 401);
    assert_eq!(p.token("nobody", "x").0, 401);
    assert_eq!(p.token("*)(uid=*", "alice-pw").0, 401);
    assert_eq!(p.token("alice", "").0, 401);
    let (_, users) = p.call(a, "GET", "/api/v1/users", None);
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "alice"], "refused logins create no user");
    let (_, audit) = p.call(a, "GET", "/api/v1/audit?action=auth.login_failed", None);
    assert!(audit.to_string().contains("\"bob\""), "{audit}");

    // alice leaves shop-ops in the directory: the operator role goes at her next login.
    slapd.modify(
        // (groupOfNames needs a member: bob takes her place.)
        "dn: cn=shop-ops,ou=groups,dc=example,dc=com\nchangetype: modify\nreplace: member\nmember: uid=bob,ou=people,dc=example,dc=com\n",
    );
    assert_eq!(p.token("alice", "alice-pw").0, 201);
    assert_eq!(p.roles(&admin, "alice"), ["developer"]);
    let (_, audit) = p.call(a, "GET", "/api/v1/audit?action=directory.roles_synced", None);
    assert!(audit.as_array().unwrap().len() >= 2, "{audit}");

    // bob logs into the console; then an admin disables him and he stays out.
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/auth/login", p.server.url))
        .json(&json!({"username": "bob", "password": "bob-pw"}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .find(|c| c.starts_with("prism_session="))
        .unwrap();
    let page = reqwest::blocking::Client::new()
        .get(format!("{}/apps", p.server.url))
        .header("cookie", &cookie)
        .send()
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let (s, v) = p.call(a, "PATCH", "/api/v1/users/bob", Some(json!({"disabled": true})));
    assert_eq!(s, 200, "{v}");
    assert_eq!(p.token("bob", "bob-pw").0, 401);

    // The directory goes away: its users get a 5xx (not a failed login), local users go on.
    drop(slapd);
    // (The refusals above slowed this address down: wait out the throttle.)
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (s, v) = loop {
        let (s, v) = p.call(
            None,
            "POST",
            "/api/v1/auth/token",
            Some(json!({"username": "alice", "password": "alice-pw"})),
        );
        if s != 429 || std::time::Instant::now() > deadline {
            break (s, v);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!((500..600).contains(&s), "{s} {v}");
    assert!(v.to_string().contains("directory is unavailable"), "{v}");
    // The admin's login may have to wait out the address's throttle too.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while p.token("admin", ADMIN_PASSWORD).0 != 201 {
        assert!(std::time::Instant::now() < deadline, "the local admin cannot log in");
        std::thread::sleep(Duration::from_millis(500));
    }
    // alice's token from before still works until it expires or an admin ends it.
    assert_eq!(p.call(Some(&alice), "GET", "/api/v1/me", None).0, 200);
    p.server.stop();
}

fn session_cookie(p: &Prism, user: &str, password: &str) -> String {
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/auth/login", p.server.url))
        .json(&json!({"username": user, "password": password}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .find(|c| c.starts_with("prism_session="))
        .expect("session cookie")
}

fn console_get(p: &Prism, cookie: &str, path: &str) -> String {
    let r = reqwest::blocking::Client::new()
        .get(format!("{}{path}", p.server.url))
        .header("cookie", cookie)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "GET {path}");
    r.text().unwrap()
}

fn csrf_in(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + "name=\"csrf\" value=\"".len();
    html[at..].split('"').next().unwrap().to_owned()
}

#[test]
fn sqlite_directory_users_log_in_with_their_groups_roles() {
    directory_login(Backend::Sqlite);
}

#[test]
fn postgres_directory_users_log_in_with_their_groups_roles() {
    directory_login(Backend::Postgres);
}

/// PRISM_LOCAL_LOGIN=admins: with the directory on, only admins keep a
/// Prism password (the break-glass account); other local people are sent
/// to their directory account, told so only once their password is right.
#[test]
fn local_passwords_can_be_limited_to_admins() {
    let slapd = Slapd::start();
    let url = slapd.url();
    let server = ServerProcess::start_on(
        TestDb::start_blocking(Backend::Sqlite),
        "ldap-local-off",
        &[
            ("PRISM_LDAP_URL", url.as_str()),
            ("PRISM_LDAP_SECURITY", "plain"),
            ("PRISM_LDAP_BIND_DN", ldap::ADMIN_DN),
            ("PRISM_LDAP_BIND_PASSWORD", ldap::ADMIN_PASSWORD),
            ("PRISM_LDAP_USER_BASE", ldap::PEOPLE),
            (
                "PRISM_LDAP_USER_FILTER",
                "(&(objectClass=inetOrgPerson)(uid={username}))",
            ),
            ("PRISM_LDAP_GROUP_BASE", ldap::GROUPS),
            ("PRISM_LOCAL_LOGIN", "admins"),
        ],
    );
    let p = Prism { server };
    let (s, admin) = p.token("admin", ADMIN_PASSWORD);
    assert_eq!(s, 201, "the local admin still logs in");
    let admin = admin.unwrap();
    let (s, v) = p.call(
        Some(&admin),
        "POST",
        "/api/v1/users",
        Some(json!({"username": "carol", "password": "carol-local-pw-1"})),
    );
    assert_eq!(s, 201, "{v}");
    // A wrong password reads as any failed login; the right one is refused with the reason.
    assert_eq!(p.token("carol", "not-carols-password").0, 401);
    let (s, v) = p.call(
        None,
        "POST",
        "/api/v1/auth/token",
        Some(json!({"username": "carol", "password": "carol-local-pw-1"})),
    );
    assert_eq!(s, 403, "{v}");
    assert!(v["error"].as_str().unwrap().contains("directory account"), "{v}");
    // Directory users log in as before.
    let (s, _) = p.token("alice", "alice-pw");
    assert_eq!(s, 201);
    p.server.stop();
}
