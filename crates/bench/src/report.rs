//! The figures a benchmark prints, kept as rows (benchmark, case, metric,
//! Prism's value, the peer's and the ratio) while it prints them, and the
//! Markdown file `prism-bench all` writes from them.
//!
//! Ratios are Prism's cost over the peer's: Prism's time, latency or bytes
//! divided by the peer's, or the peer's throughput divided by Prism's. Above
//! 1 Prism is slower (or larger); below 1 it is faster.

use std::fmt::Write as _;
use std::sync::Mutex;

/// One figure of one benchmark.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    pub bench: String,
    /// What was measured: store and workload, application count, runner...
    pub case: String,
    pub metric: String,
    pub value: f64,
    pub unit: String,
    /// The same measured for the peer tool, in the same run.
    pub peer: Option<Peer>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Peer {
    pub name: String,
    pub value: f64,
    /// Prism's cost over the peer's (see the module's doc).
    pub ratio: f64,
}

impl Figure {
    pub fn new(bench: &str, case: impl Into<String>, metric: &str, value: f64, unit: &str) -> Figure {
        Figure {
            bench: bench.into(),
            case: case.into(),
            metric: metric.into(),
            value,
            unit: unit.into(),
            peer: None,
        }
    }

    /// The peer's value beside Prism's and the ratio of the two.
    pub fn beside(mut self, peer: &str, value: f64, ratio: f64) -> Figure {
        self.peer = Some(Peer {
            name: peer.into(),
            value,
            ratio,
        });
        self
    }

    /// Keeps the figure for the report of this run.
    pub fn record(self) {
        SINK.lock().unwrap_or_else(|e| e.into_inner()).figures.push(self);
    }
}

/// A remark a benchmark makes beside its figures (a part not measured and why).
pub fn note(bench: &str, text: impl Into<String>) {
    SINK.lock()
        .unwrap_or_else(|e| e.into_inner())
        .notes
        .push((bench.into(), text.into()));
}

#[derive(Default)]
struct Sink {
    figures: Vec<Figure>,
    notes: Vec<(String, String)>,
}

static SINK: Mutex<Sink> = Mutex::new(Sink {
    figures: Vec::new(),
    notes: Vec::new(),
});

/// Everything recorded since the last call: figures and notes.
pub fn take() -> (Vec<Figure>, Vec<String>) {
    let mut s = SINK.lock().unwrap_or_else(|e| e.into_inner());
    let sink = std::mem::take(&mut *s);
    (sink.figures, sink.notes.into_iter().map(|(_, n)| n).collect())
}

/// How one benchmark of the set went.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Ran,
    /// It started and ended with an error (its figures so far are kept).
    Failed(String),
    /// Not started: what it needs is missing.
    Skipped(String),
}

/// One benchmark's section of the file.
#[derive(Clone, Debug)]
pub struct Section {
    pub bench: String,
    /// What it measures and how to read its ratios.
    pub about: String,
    /// The equivalent command line (its sizes).
    pub command: String,
    pub seconds: f64,
    pub outcome: Outcome,
    pub figures: Vec<Figure>,
    pub notes: Vec<String>,
}

/// The whole run.
#[derive(Clone, Debug)]
pub struct Run {
    pub command: String,
    pub date: String,
    pub commit: Option<String>,
    pub profile: &'static str,
    pub cores: usize,
    pub load_start: String,
    pub load_end: String,
    pub seconds: f64,
    pub sections: Vec<Section>,
    /// Parts of a benchmark left out while the rest ran (e.g. its PostgreSQL rows).
    pub partial: Vec<(String, String)>,
}

/// A table cell: `|` escaped, line breaks as spaces.
pub fn cell(s: &str) -> String {
    s.replace('\\', "\\\\").replace('|', "\\|").replace(['\r', '\n'], " ")
}

/// A number as the tables print it: whole numbers as such, others with two
/// significant decimals below 10, one below 100, none above.
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    if v == v.trunc() && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    match v.abs() {
        a if a >= 100.0 => format!("{v:.0}"),
        a if a >= 10.0 => format!("{v:.1}"),
        _ => format!("{v:.2}"),
    }
}

/// A value with its unit ("12.3 ms", "3/3" for a count out of a total).
pub fn value(v: f64, unit: &str) -> String {
    if unit.is_empty() || unit.starts_with('/') {
        format!("{}{unit}", number(v))
    } else {
        format!("{} {unit}", number(v))
    }
}

pub fn ratio(r: f64) -> String {
    if r.is_finite() {
        format!("{r:.2}x")
    } else {
        "-".into()
    }
}

/// The table of one benchmark's figures.
pub fn table(figures: &[Figure]) -> String {
    let mut out = String::from("| Case | Metric | Prism | Peer | Peer's | Ratio |\n|---|---|--:|---|--:|--:|\n");
    for f in figures {
        let (peer, peer_value, r) = match &f.peer {
            Some(p) => (cell(&p.name), value(p.value, &f.unit), ratio(p.ratio)),
            None => (String::new(), String::new(), String::new()),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            cell(&f.case),
            cell(&f.metric),
            value(f.value, &f.unit),
            peer,
            peer_value,
            r
        );
    }
    out
}

pub fn markdown(run: &Run) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Prism benchmarks\n");
    let _ = writeln!(
        out,
        "Written by `{}` (crates/bench; see the README's Benchmarks section). \
         Every figure beside a peer was measured in the same run as the peer's. \
         Ratios are Prism's cost over the peer's: time, latency or bytes divided by the \
         peer's, throughput the other way round; above 1x Prism is slower or larger.\n",
        run.command
    );
    let _ = writeln!(out, "| Run | |\n|---|---|");
    let rows = [
        ("Date", run.date.clone()),
        ("Commit", run.commit.clone().unwrap_or_else(|| "unknown".into())),
        ("Build", run.profile.to_string()),
        ("Cores", run.cores.to_string()),
        ("Load average at start (1, 5, 15 min)", run.load_start.clone()),
        ("Load average at end", run.load_end.clone()),
        ("Total run time", format!("{} s", number(run.seconds.round()))),
    ];
    for (k, v) in rows {
        let _ = writeln!(out, "| {} | {} |", cell(k), cell(&v));
    }
    for s in &run.sections {
        let _ = writeln!(out, "\n## {}\n", s.bench);
        let _ = writeln!(out, "{}\n", s.about);
        match &s.outcome {
            Outcome::Skipped(why) => {
                let _ = writeln!(out, "Skipped: {why}");
                continue;
            }
            Outcome::Ran => {
                let _ = writeln!(out, "`{}`: {} s.\n", s.command, number(s.seconds.round()));
            }
            Outcome::Failed(e) => {
                let _ = writeln!(
                    out,
                    "`{}`: **failed** after {} s: {}\n",
                    s.command,
                    number(s.seconds.round()),
                    e.replace('\n', " ")
                );
            }
        }
        if !s.figures.is_empty() {
            out.push_str(&table(&s.figures));
        }
        if !s.notes.is_empty() {
            out.push('\n');
            for n in &s.notes {
                let _ = writeln!(out, "- {n}");
            }
        }
    }
    let skipped: Vec<(String, String)> = run
        .sections
        .iter()
        .filter_map(|s| match &s.outcome {
            Outcome::Skipped(why) => Some((s.bench.clone(), why.clone())),
            _ => None,
        })
        .chain(run.partial.iter().cloned())
        .collect();
    let _ = writeln!(out, "\n## Skipped\n");
    if skipped.is_empty() {
        let _ = writeln!(out, "Nothing: every benchmark ran in full.");
    }
    for (bench, why) in skipped {
        let _ = writeln!(out, "- {bench}: {why}");
    }
    out
}

/// The 1, 5 and 15 minute load averages (`/proc/loadavg`).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// `git rev-parse --short HEAD` of the checkout, noting uncommitted changes.
pub fn git_commit() -> Option<String> {
    let root = crate::peers::repo_root();
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(&root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let head = git(&["rev-parse", "--short", "HEAD"]).filter(|h| !h.is_empty())?;
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty {
        format!("{head} (with uncommitted changes)")
    } else {
        head
    })
}

/// `secs` since the Unix epoch as "YYYY-MM-DD HH:MM UTC".
pub fn utc_date(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

pub fn now_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    utc_date(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(sections: Vec<Section>) -> Run {
        Run {
            command: "prism-bench all --quick".into(),
            date: "2026-12-08 10:00 UTC".into(),
            commit: Some("abc1234".into()),
            profile: "release",
            cores: 2,
            load_start: "1.00 0.50 0.25".into(),
            load_end: "2.00 1.00 0.50".into(),
            seconds: 312.4,
            sections,
            partial: vec![],
        }
    }

    fn section(bench: &str, outcome: Outcome, figures: Vec<Figure>) -> Section {
        Section {
            bench: bench.into(),
            about: format!("What {bench} measures."),
            command: format!("prism-bench {bench}"),
            seconds: 12.0,
            outcome,
            figures,
            notes: vec![],
        }
    }

    #[test]
    fn a_figure_beside_its_peer_has_its_ratio_and_one_without_has_empty_peer_cells() {
        let md = markdown(&run(vec![section(
            "deploy",
            Outcome::Ran,
            vec![
                Figure::new("deploy", "100 applications", "time", 6.6, "s").beside(
                    "kubectl, one after another",
                    12.3,
                    6.6 / 12.3,
                ),
                Figure::new("deploy", "server", "peak RSS", 41.26, "MiB"),
            ],
        )]));
        assert!(md.contains("| Case | Metric | Prism | Peer | Peer's | Ratio |"), "{md}");
        assert!(
            md.contains("| 100 applications | time | 6.60 s | kubectl, one after another | 12.3 s | 0.54x |"),
            "{md}"
        );
        assert!(md.contains("| server | peak RSS | 41.3 MiB |  |  |  |"), "{md}");
        assert!(md.contains("| Cores | 2 |"), "{md}");
        assert!(
            md.contains("| Load average at start (1, 5, 15 min) | 1.00 0.50 0.25 |"),
            "{md}"
        );
        assert!(md.contains("| Total run time | 312 s |"), "{md}");
        assert!(md.contains("| Commit | abc1234 |"), "{md}");
        assert!(md.contains("`prism-bench deploy`: 12 s."), "{md}");
        assert!(
            md.contains("## Skipped\n\nNothing: every benchmark ran in full."),
            "{md}"
        );
    }

    #[test]
    fn a_skipped_benchmark_is_listed_with_its_reason() {
        let mut r = run(vec![
            section(
                "image",
                Outcome::Skipped("prism-bench image needs buildah (apt-get install buildah, or --install)".into()),
                vec![],
            ),
            section("crash", Outcome::Failed("cluster.sh up failed".into()), vec![]),
        ]);
        r.partial.push((
            "api on PostgreSQL".into(),
            "PostgreSQL at postgres://x is not reachable".into(),
        ));
        let md = markdown(&r);
        assert!(
            md.contains("## image\n\nWhat image measures.\n\nSkipped: prism-bench image needs buildah (apt-get install buildah, or --install)"),
            "{md}"
        );
        assert!(
            md.contains("- image: prism-bench image needs buildah (apt-get install buildah, or --install)"),
            "{md}"
        );
        assert!(
            md.contains("- api on PostgreSQL: PostgreSQL at postgres://x is not reachable"),
            "{md}"
        );
        assert!(md.contains("**failed** after 12 s: cluster.sh up failed"), "{md}");
        assert!(!md.contains("- crash:"), "a failure is not a skip: {md}");
    }

    #[test]
    fn pipes_in_cells_are_escaped() {
        let t = table(&[Figure::new("api", "sqlite | first page", "p99", 2.0, "ms").beside("SQL | direct", 1.0, 2.0)]);
        assert!(
            t.contains("| sqlite \\| first page | p99 | 2 ms | SQL \\| direct | 1 ms | 2.00x |"),
            "{t}"
        );
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }

    #[test]
    fn counts_and_numbers_print_as_read() {
        assert_eq!(value(3.0, "/3"), "3/3");
        assert_eq!(value(0.514, "s"), "0.51 s");
        assert_eq!(value(1234.4, "req/s"), "1234 req/s");
        assert_eq!(ratio(f64::INFINITY), "-");
    }

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(utc_date(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_date(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc_date(1_796_730_000), "2026-12-08 11:40 UTC");
    }

    #[test]
    fn recorded_figures_and_notes_are_taken_once() {
        Figure::new("t", "c", "m", 1.0, "s").record();
        note("t", "a remark");
        let (figures, notes) = take();
        assert!(figures.iter().any(|f| f.bench == "t") && notes.contains(&"a remark".to_string()));
        let (figures, _) = take();
        assert!(!figures.iter().any(|f| f.bench == "t"));
    }
}
