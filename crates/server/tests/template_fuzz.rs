//! The template fuzz test of issue 11 item 1, in a process of its own: it
//! bounds the resident memory of the process that hosts the server, which
//! in the API suite's shared process also held what a hundred other tests
//! left behind (it passed or failed with the tests that happened to run
//! before it).

#[path = "api/preview_world.rs"]
mod preview_world;

use prism_test_support::{Backend, TestApp};
use reqwest::StatusCode;
use serde_json::Value;

use preview_world::{preview, shop_with_release, still_serving};

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// A tiny deterministic generator: the same templates on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// A number of any magnitude up to 10^15, small ones as likely as big ones.
    fn size(&mut self) -> u64 {
        let digits = self.below(16) as u32;
        1 + self.below(10u64.pow(digits).max(1))
    }
}

fn fuzz_template(r: &mut Rng) -> String {
    let n = r.size();
    let m = r.size();
    let d = 1 + r.below(600) as usize;
    match r.below(16) {
        0 => format!("{}x{}", "{% if true %}".repeat(d), "{% endif %}".repeat(d)),
        1 => format!("{{{{ {}1{} }}}}", "[".repeat(d), "]".repeat(d)),
        2 => format!(r#"{{{{ "x" * {n} }}}}"#),
        3 => format!(r#"{{{{ ("ab" * {}) * {} }}}}"#, n % 200_000_000, m % 1000),
        4 => format!("{{{{ [1, 2] * {n} }}}}"),
        5 => format!("{{% macro f(n) %}}{{{{ f(n) }}}}{{{{ f(n) }}}}{{% endmacro %}}{{{{ f({n}) }}}}"),
        6 => format!("{{% macro f(n) %}}{{% if n > 0 %}}{{{{ f(n - 1) ~ f(n - 1) }}}}{{% else %}}xx{{% endif %}}{{% endmacro %}}{{{{ f({}) }}}}", d % 64),
        7 => format!(r#"{{{{ "a\nb"|indent({n}) }}}}"#),
        8 => format!("{{{{ settings|tojson(indent={n}) }}}}"),
        9 => format!(r#"{{{{ "%{n}s"|format("a") }}}}"#),
        10 => format!(
            "{{% for i in range({}) %}}{{% for j in range({}) %}}{{{{ i * j }}}}{{% endfor %}}{{% endfor %}}",
            n % 200_000,
            m % 200_000
        ),
        11 => format!(
            r#"{{% set ns = namespace(s="{}") %}}{{% for i in range({}) %}}{{% set ns.s = ns.s ~ ns.s %}}{{% endfor %}}{{{{ ns.s }}}}"#,
            "y".repeat(1 + d),
            d % 64
        ),
        12 => format!("{{{{ range({})|list|pprint }}}}", n % 200_000),
        13 => format!(r#"{{{{ ("z" * {})|replace("z", "{}") }}}}"#, n % 100_000_000, "w".repeat(d)),
        14 => format!(r#"{{{{ (["q" * {}] * {})|join("--") }}}}"#, n % 10_000_000, m % 100_000),
        _ => format!(
            "{}{{{{ {} }}}}",
            "{% filter upper %}".repeat(d % 100) + &"{% endfilter %}".repeat(d % 100),
            "(1 + ".repeat(d % 200) + "1" + &")".repeat(d % 200)
        ),
    }
}

// Item 1, the fuzz test: 2,000 generated templates (deep nesting, huge
// multiplications, recursive macros, huge indents, long loops, doubling
// strings) through the preview endpoint. Every answer is 200 or 422, the
// server keeps serving, and its resident memory (this test process hosts
// it) stays under 768 MiB. Before the fix the first huge indent or
// allocation aborted the process. SQLite only: the store plays no part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzed_templates_never_take_the_server_down() {
    const BOUND: u64 = 768 * 1024 * 1024;
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (dev, rel) = shop_with_release(&app).await;
    let mut r = Rng(0x5eed_1234_abcd_0042);
    let mut refused = 0;
    for batch in 0..100 {
        let files: serde_json::Map<String, Value> = (0..20)
            .map(|i| (format!("f{batch}-{i}.yaml"), Value::String(fuzz_template(&mut r))))
            .collect();
        let started = std::time::Instant::now();
        let (s, v) = preview(&app, &dev, &rel, Value::Object(files.clone())).await;
        let took = started.elapsed();
        eprintln!(
            "fuzz batch {batch}: {s} in {took:?}, resident {} MiB",
            rss_bytes() >> 20
        );
        assert!(
            s == StatusCode::OK || s == StatusCode::UNPROCESSABLE_ENTITY,
            "batch {batch}: {s} {v}\n{files:#?}"
        );
        if s == StatusCode::UNPROCESSABLE_ENTITY {
            refused += 1;
            let msg = v["error"].as_str().unwrap_or_default();
            assert!(msg.contains(&format!("f{batch}-")), "names a template: {msg}");
        }
        let rss = rss_bytes();
        assert!(rss < BOUND, "resident memory {rss} bytes after batch {batch}");
    }
    assert!(
        refused > 50,
        "the generator produces hostile templates ({refused} batches refused)"
    );
    still_serving(&app, &dev, &rel).await;
    app.stop().await;
}
