//! Delivery statistics per project, drawn by the server as SVG: releases and
//! deploys per week, lead time from release to the last environment, change
//! failure rate and time to restore there, and the median build duration
//! per week. Computed from the most recent releases, deploys and builds (a
//! fixed number of rows, four queries whatever the history).

use prism_domain::{BuildState, DeployKind, DeployState};
use std::collections::HashMap;

use axum::extract::State;
use axum::response::Html;
use minijinja::{context, Value};
use prism_store::releases::{self, ReleaseFilter};
use prism_store::{builds, deploys, environments, projects};
use serde::Deserialize;

use super::error::WebResult;
use super::render::page as render;
use super::session::{PageQuery, Web};
use super::text;
use crate::error::ApiError;
use crate::state::AppState;

/// How much history the page reads: the newest rows of each table.
const RELEASES: i64 = 500;
const DEPLOYS: i64 = 1000;
const BUILDS: i64 = 500;
const WEEKS: i64 = 12;
const WEEK_MS: i64 = 7 * 86_400_000;
const HOUR_MS: f64 = 3_600_000.0;

#[derive(Deserialize)]
pub struct StatsQuery {
    project: Option<String>,
}

/// Monday 00:00 UTC of the week `ms` falls in.
fn week_start(ms: i64) -> i64 {
    // 1970-01-01 was a Thursday: shift so weeks start on Monday.
    let monday_offset = 3 * 86_400_000;
    (ms + monday_offset).div_euclid(WEEK_MS) * WEEK_MS - monday_offset
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Some(v[v.len() / 2])
}

/// `07-14`: a week's label.
fn week_label(start: i64) -> String {
    chrono::DateTime::from_timestamp_millis(start)
        .map(|d| d.format("%m-%d").to_string())
        .unwrap_or_default()
}

/// A chart for everyone: the SVG bars, named by a `<title>` (screen readers
/// announce it as one image), and the same numbers as a table under a
/// disclosure. `series` are (CSS class, name, one value per week); `id`
/// keeps the title's id unique on the page. Only numbers, dates and our
/// own texts go into it; the texts are escaped all the same.
fn chart(id: &str, title: &str, weeks: &[i64], series: &[(&str, &str, Vec<i64>)]) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let plain: Vec<(&str, Vec<i64>)> = series.iter().map(|(c, _, v)| (*c, v.clone())).collect();
    let svg = bars(weeks, &plain, Some((&format!("chart-{id}-title"), &esc(title))));
    let mut table = format!(
        r#"<details class="chart-data" id="chart-{id}-data"><summary>{}</summary><div class="scroll-x"><table class="small"><thead><tr><th scope="col">{}</th>"#,
        esc(text::get("stats.as_table")),
        esc(text::get("stats.week_of")),
    );
    for (_, name, _) in series {
        table += &format!(r#"<th scope="col">{}</th>"#, esc(name));
    }
    table += "</tr></thead><tbody>";
    for (i, start) in weeks.iter().enumerate() {
        table += &format!(r#"<tr><th scope="row">{}</th>"#, week_label(*start));
        for (_, _, values) in series {
            table += &format!("<td>{}</td>", values[i]);
        }
        table += "</tr>";
    }
    svg + &table + "</tbody></table></div></details>"
}

/// A bar chart of one or two series per week, as an SVG document. Only
/// numbers and dates we format go into it.
/// `title` is the chart's name (element id, escaped text): the image is
/// labelled by it.
fn bars(weeks: &[i64], series: &[(&str, Vec<i64>)], title: Option<(&str, &str)>) -> String {
    let (w, h, left, bottom) = (640.0, 180.0, 36.0, 24.0);
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let slot = (w - left) / weeks.len() as f64;
    let bar = (slot * 0.8) / series.len() as f64;
    let mut svg = format!(r#"<svg class="chart" viewBox="0 0 {w} {h}" role="img" xmlns="http://www.w3.org/2000/svg""#);
    match title {
        Some((id, text)) => svg += &format!(r#" aria-labelledby="{id}"><title id="{id}">{text}</title>"#),
        None => svg += ">",
    }
    svg += &format!(
        r#"<line class="axis" x1="{left}" y1="{y}" x2="{w}" y2="{y}"/><text class="tick" x="{x}" y="12">{max}</text><text class="tick" x="{x}" y="{y}">0</text>"#,
        y = h - bottom,
        x = left - 6.0,
        max = max as i64
    );
    for (i, start) in weeks.iter().enumerate() {
        let x0 = left + i as f64 * slot + slot * 0.1;
        for (s, (class, values)) in series.iter().enumerate() {
            let v = values[i] as f64;
            let bh = (h - bottom - 16.0) * v / max;
            let x = x0 + s as f64 * bar;
            let y = h - bottom - bh;
            svg += &format!(
                r#"<rect class="{class}" x="{x:.1}" y="{y:.1}" width="{bw:.1}" height="{bh:.1}"><title>{v}</title></rect>"#,
                bw = bar - 1.0
            );
        }
        if i % 2 == 0 {
            let label = week_label(*start);
            svg += &format!(
                r#"<text class="tick x" x="{x:.1}" y="{y}">{label}</text>"#,
                x = x0,
                y = h - 6.0
            );
        }
    }
    svg + "</svg>"
}

pub async fn page(
    State(state): State<AppState>,
    Web(caller): Web,
    PageQuery(q): PageQuery<StatsQuery>,
) -> WebResult<Html<String>> {
    let mut c = state.store.conn().await?;
    let visible = projects::list_visible(&mut c, crate::ops::access::visibility(&caller)).await?;
    let Some(project) = (match &q.project {
        Some(p) => Some(
            visible
                .iter()
                .find(|v| &v.name == p)
                .ok_or_else(|| ApiError::not_found("project", p))?,
        ),
        None => visible.first(),
    }) else {
        drop(c);
        return render(
            &state,
            &caller,
            "stats.html",
            context! { nav => "stats", projects => visible },
        )
        .await;
    };
    let rels = releases::list(
        &mut c,
        &ReleaseFilter {
            project_id: Some(project.id),
            limit: RELEASES,
            ..Default::default()
        },
    )
    .await?;
    // The project's own latest deploys (a page of everyone's, filtered
    // afterwards, left a quiet project's statistics empty).
    let filter = deploys::DeployFilter {
        project_id: Some(project.id),
        limit: DEPLOYS,
        ..Default::default()
    };
    let ds = deploys::outcomes(&mut c, &filter).await?;
    let last_env = environments::lifecycle(&mut c)
        .await?
        .into_iter()
        .max_by_key(|e| e.position);
    let timings = builds::recent_timings(&mut c, project.id, BUILDS).await?;
    drop(c);

    let now = prism_store::now_ms();
    let weeks: Vec<i64> = (0..WEEKS).rev().map(|k| week_start(now) - k * WEEK_MS).collect();
    let index = |ms: i64| weeks.iter().position(|w| *w == week_start(ms));
    let mut released = vec![0; weeks.len()];
    for r in &rels {
        if let Some(i) = index(r.created_at) {
            released[i] += 1;
        }
    }
    let (mut ok, mut failed) = (vec![0; weeks.len()], vec![0; weeks.len()]);
    for d in ds.iter().filter(|d| d.finished_at.is_some()) {
        if let Some(i) = index(d.finished_at.unwrap_or_default()) {
            match d.state {
                DeployState::Succeeded => ok[i] += 1,
                DeployState::Failed => failed[i] += 1,
                _ => {}
            }
        }
    }

    // The last environment of the lifecycle is production.
    let prod = last_env.as_ref().map(|e| e.id);
    let mut prod_deploys: Vec<&deploys::Outcome> = ds
        .iter()
        .filter(|d| Some(d.env_id) == prod && d.finished_at.is_some())
        .collect();
    prod_deploys.sort_by_key(|d| d.finished_at);
    let created: HashMap<String, i64> = rels.iter().map(|r| (r.id.to_string(), r.created_at)).collect();
    let lead: Vec<f64> = prod_deploys
        .iter()
        .filter(|d| d.kind == DeployKind::Deploy && d.state == DeployState::Succeeded)
        .filter_map(|d| Some((d.finished_at? - created.get(&d.release.to_string())?) as f64 / HOUR_MS))
        .collect();
    let judged: Vec<_> = prod_deploys
        .iter()
        .filter(|d| {
            d.kind == DeployKind::Deploy && (d.state == DeployState::Succeeded || d.state == DeployState::Failed)
        })
        .collect();
    let failure_rate = (!judged.is_empty())
        .then(|| 100.0 * judged.iter().filter(|d| d.state == DeployState::Failed).count() as f64 / judged.len() as f64);
    // Time to restore: from a failed deploy to the next success in the same application.
    let restore: Vec<f64> = prod_deploys
        .iter()
        .filter(|d| d.state == DeployState::Failed)
        .filter_map(|f| {
            let next = prod_deploys
                .iter()
                .find(|d| d.app_id == f.app_id && d.state == DeployState::Succeeded && d.finished_at > f.finished_at)?;
            Some((next.finished_at? - f.finished_at?) as f64 / HOUR_MS)
        })
        .collect();

    // Builds: the median duration (seconds) of each week's successful builds
    // (a failure's duration says where it stopped, not how long a build takes).
    let mut per_week: Vec<Vec<f64>> = vec![vec![]; weeks.len()];
    for t in timings.iter().filter(|t| t.state == BuildState::Succeeded) {
        if let Some(i) = index(t.finished_at) {
            per_week[i].push((t.finished_at - t.started_at) as f64 / 1000.0);
        }
    }
    let build_medians: Vec<i64> = per_week
        .iter()
        .map(|v| median(v.clone()).map_or(0, |m| m.round() as i64))
        .collect();
    let build_median = median(
        timings
            .iter()
            .filter(|t| t.state == BuildState::Succeeded)
            .map(|t| (t.finished_at - t.started_at) as f64)
            .collect(),
    )
    .map(|ms| super::builds::duration(ms as i64));
    let builds_failed = timings.iter().filter(|t| t.state != BuildState::Succeeded).count();

    let fmt_hours = |h: Option<f64>| h.map(|h| format!("{h:.1} h"));
    render(
        &state,
        &caller,
        "stats.html",
        context! {
            nav => "stats",
            projects => visible,
            project => project.name,
            production => last_env.map(|e| e.name),
            releases_chart => Value::from_safe_string(chart(
                "releases",
                text::get("stats.releases_per_week"),
                &weeks,
                &[("bar-releases", text::get("stats.releases"), released.clone())],
            )),
            deploys_chart => Value::from_safe_string(chart(
                "deploys",
                text::get("stats.deploys_per_week"),
                &weeks,
                &[
                    ("bar-ok", text::get("stats.succeeded"), ok.clone()),
                    ("bar-failed", text::get("stats.failed"), failed.clone()),
                ],
            )),
            releases_total => released.iter().sum::<i64>(),
            deploys_ok => ok.iter().sum::<i64>(),
            deploys_failed => failed.iter().sum::<i64>(),
            lead_time => fmt_hours(median(lead)),
            failure_rate => failure_rate.map(|r| format!("{r:.0} %")),
            judged => judged.len(),
            restore => fmt_hours(median(restore)),
            builds_chart => Value::from_safe_string(chart(
                "builds",
                text::get("stats.build_per_week"),
                &weeks,
                &[("bar-builds", text::get("stats.median_seconds"), build_medians)],
            )),
            build_median => build_median,
            builds_total => timings.len(),
            builds_failed => builds_failed,
            rows_read => context! { releases => RELEASES, deploys => DEPLOYS, builds => BUILDS },
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_start_on_monday_utc() {
        // 2026-11-25 (a Wednesday) 12:00 UTC -> Monday 2026-11-23 00:00 UTC.
        let wed = chrono::DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")
            .unwrap()
            .timestamp_millis();
        let mon = chrono::DateTime::parse_from_rfc3339("2026-11-23T00:00:00Z")
            .unwrap()
            .timestamp_millis();
        assert_eq!(week_start(wed), mon);
        assert_eq!(week_start(mon), mon);
        assert_eq!(week_start(mon - 1), mon - WEEK_MS);
    }

    #[test]
    fn chart_scales_bars_to_the_largest_value() {
        let svg = bars(&[0, WEEK_MS], &[("a", vec![2, 4])], None);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains("<title>4</title>"));
        assert!(svg.contains(">4</text>"), "the axis shows the maximum: {svg}");
    }

    #[test]
    fn chart_has_a_title_and_the_same_numbers_as_a_table() {
        let html = chart(
            "x",
            "Deploys <per> week",
            &[0, WEEK_MS],
            &[("a", "ok", vec![2, 4]), ("b", "failed", vec![0, 7])],
        );
        assert!(html.starts_with(r#"<svg class="chart" viewBox="0 0 640 180" role="img" xmlns="http://www.w3.org/2000/svg" aria-labelledby="chart-x-title"><title id="chart-x-title">Deploys &lt;per&gt; week</title><line "#), "{html}");
        assert!(html.contains(r#"<th scope="row">01-01</th><td>2</td><td>0</td></tr><tr><th scope="row">01-08</th><td>4</td><td>7</td></tr>"#), "{html}");
        assert!(html.contains("<th scope=\"col\">failed</th>"), "{html}");
    }
}
