//! Browser helpers for the web console tests: Debian's chromedriver driving
//! headless Chromium over WebDriver (fantoccini), one browser per user, a
//! screenshot per step, and a plain HTTP client for form posts without a
//! browser.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Installs chromium, chromium-driver (and a CJK font) with apt when missing;
/// returns at once when they are there.
pub fn ensure_chromium() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/ensure-chromium.sh");
    let st = Command::new("bash")
        .arg(script)
        .status()
        .expect("run ensure-chromium.sh");
    assert!(st.success(), "scripts/ensure-chromium.sh failed");
}

/// Where the screenshots go: `web-screenshots/` in the build directory
/// (`target/`, three levels above `target/debug/deps/TEST-BINARY`).
pub fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let d = exe.ancestors().nth(3).expect("target dir").join("web-screenshots");
    std::fs::create_dir_all(&d).expect("screenshot dir");
    d
}

/// A chromedriver on a free port, killed on drop.
pub struct Driver {
    child: Child,
    pub url: String,
}

impl Driver {
    pub fn start() -> Driver {
        ensure_chromium();
        let port = crate::dirs::free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen within 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// A new headless browser (its own profile, so its own cookies).
    pub async fn browser(&self, base: &str, who: &str, javascript: bool) -> Browser {
        self.browser_with(base, who, javascript, &[]).await
    }

    /// A browser with extra Chromium flags (e.g. a forced colour scheme).
    pub async fn browser_with(&self, base: &str, who: &str, javascript: bool, flags: &[&str]) -> Browser {
        let mut prefs = serde_json::Map::new();
        if !javascript {
            prefs.insert("profile.managed_default_content_settings.javascript".into(), json!(2));
        }
        let mut args = vec![
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1280,1000",
            "--force-color-profile=srgb",
        ];
        args.extend_from_slice(flags);
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": args,
                "prefs": prefs,
            }
        });
        let caps = match caps {
            serde_json::Value::Object(m) => m,
            _ => unreachable!(),
        };
        // chromedriver speaks plain HTTP on loopback: no TLS stack needed.
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a WebDriver session");
        Browser {
            client,
            base: base.to_owned(),
            who: who.to_owned(),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One user's browser on the Prism under test.
pub struct Browser {
    pub client: Client,
    pub base: String,
    pub who: String,
}

impl Browser {
    pub async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("{} goto {path}: {e}", self.who));
    }

    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("current url");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
        {
            Ok(e) => e,
            Err(e) => panic!("{}: no element {css:?} on {}: {e}", self.who, self.path().await),
        }
    }

    pub async fn exists(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .expect("find_all")
            .is_empty()
    }

    /// The element's text; found again if the page changed under it.
    pub async fn text(&self, css: &str) -> String {
        for _ in 0..20 {
            match self.find(css).await.text().await {
                Ok(t) => return t,
                Err(fantoccini::error::CmdError::Standard(e))
                    if e.error == fantoccini::error::ErrorStatus::StaleElementReference =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("{}: text of {css}: {e}", self.who),
            }
        }
        panic!("{}: {css} kept going stale", self.who)
    }

    /// Replaces what a field holds by typing (works without JavaScript).
    /// An attribute of the element `css` finds, found again when a live
    /// reload replaced it between the lookup and the read.
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        for _ in 0..20 {
            match self.find(css).await.attr(name).await {
                Ok(v) => return v,
                Err(fantoccini::error::CmdError::Standard(e))
                    if e.error == fantoccini::error::ErrorStatus::StaleElementReference =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("{}: attribute {name} of {css}: {e}", self.who),
            }
        }
        panic!("{}: {css} kept going stale", self.who)
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let e = self.find(css).await;
        e.clear().await.expect("clear");
        e.send_keys(value).await.expect("type");
    }

    /// Clicks a button or link that loads a page, and waits until the old
    /// page is gone (its root element is reported stale) and a new root
    /// element is there, so what is read next is the new page.
    pub async fn click(&self, css: &str) {
        let old = self.find("html").await;
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("{}: click {css}: {e}", self.who));
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let gone = matches!(
                old.tag_name().await,
                Err(fantoccini::error::CmdError::Standard(ref e))
                    if e.error == fantoccini::error::ErrorStatus::StaleElementReference
            );
            if gone {
                if let Ok(new) = self.client.find(Locator::Css("html")).await {
                    if new.element_id() != old.element_id() && new.tag_name().await.is_ok() {
                        return;
                    }
                }
            }
            assert!(Instant::now() < deadline, "{}: clicking {css} loaded no page", self.who);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks something that does not load a page (a checkbox).
    pub async fn tick(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("{}: click {css}: {e}", self.who));
    }

    /// Saves a PNG of the page as `NN-name.png` and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        let path = screenshot_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        eprintln!("screenshot: {}", path.display());
        path
    }

    /// Saves a PNG of one part of the page (scrolled into view).
    pub async fn screenshot_of(&self, css: &str, name: &str) -> PathBuf {
        let png = self.find(css).await.screenshot().await.expect("element screenshot");
        let path = screenshot_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        eprintln!("screenshot: {}", path.display());
        path
    }

    pub async fn login(&self, username: &str, password: &str) {
        self.goto("/login").await;
        self.fill("input[name=username]", username).await;
        self.fill("input[name=password]", password).await;
        self.click("#login-submit").await;
        self.find("#whoami").await;
        assert_eq!(self.text("#whoami").await, username);
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}

/// The REST API as the admin's token: the tests' set-up, and Prism's engine
/// reporting results no page offers. Each test file adds its own helpers.
pub struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    pub async fn new(base: &str) -> Api {
        let http = reqwest::Client::new();
        let v: serde_json::Value = http
            .post(format!("{base}/api/v1/auth/token"))
            .json(&json!({"username": "admin", "password": crate::process::ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Api {
            base: base.to_owned(),
            token: v["secret"].as_str().expect("token").to_owned(),
            http,
        }
    }

    pub async fn call(&self, method: &str, path: &str, body: serde_json::Value) -> serde_json::Value {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}/api/v1{path}", self.base))
            .bearer_auth(&self.token);
        if !body.is_null() {
            req = req.json(&body);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let v: serde_json::Value = r.json().await.unwrap_or(serde_json::Value::Null);
        assert!(status.is_success(), "{method} {path}: {status} {v}");
        v
    }
}
