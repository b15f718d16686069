//! `prism board`: applications x environments, with what runs in each,
//! what is on its way in, and who holds it.

use prism_api::board::BoardCell;

use crate::context::{Ctx, GlobalArgs};
use crate::error::CliResult;
use crate::output::{grid_table, line, print_table, time};

#[derive(Debug, clap::Args)]
pub struct BoardArgs {
    /// Only this application
    #[arg(long)]
    pub app: Option<String>,
    /// Applications per page (1 to 500; the server's default is 100)
    #[arg(long)]
    pub limit: Option<i64>,
    /// The page after this application (the last one of the previous page)
    #[arg(long)]
    pub after: Option<String>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

pub async fn run(ctx: &Ctx, args: BoardArgs) -> CliResult<()> {
    let query = [
        ("application", args.app.clone()),
        ("after", args.after),
        ("limit", args.limit.map(|l| l.to_string())),
    ];
    let answer = ctx.client.get(&["board"], &query).await?;
    super::show(ctx, &answer, print_board)?;
    // A full page: more applications may follow.
    let cells: Vec<BoardCell> = serde_json::from_value(answer).unwrap_or_default();
    let mut apps: Vec<&str> = cells.iter().map(|c| c.application.as_str()).collect();
    apps.dedup();
    if args.app.is_none() && !ctx.json() && apps.len() as i64 == args.limit.unwrap_or(100) {
        if let Some(last) = apps.last() {
            line(format!("More applications may follow: prism board --after {last}"));
        }
    }
    Ok(())
}

/// Prints the cells (ordered by application, then lifecycle) as a grid.
pub fn print_board(cells: Vec<BoardCell>) {
    if cells.is_empty() {
        line("No applications yet.");
        return;
    }
    let mut envs: Vec<String> = Vec::new();
    for c in &cells {
        if !envs.contains(&c.environment) {
            envs.push(c.environment.clone());
        }
    }
    let mut header = vec!["APPLICATION".to_owned()];
    header.extend(envs.iter().map(|e| e.to_uppercase()));
    let mut t = grid_table(header);
    let mut row: Vec<String> = Vec::new();
    let mut app: Option<String> = None;
    for c in cells {
        if app.as_deref() != Some(&c.application) {
            if !row.is_empty() {
                t.add_row(std::mem::take(&mut row));
            }
            app = Some(c.application.clone());
            row.push(c.application.clone());
            row.resize(envs.len() + 1, "-".into());
        }
        if let Some(i) = envs.iter().position(|e| *e == c.environment) {
            row[i + 1] = cell_text(&c);
        }
    }
    if !row.is_empty() {
        t.add_row(row);
    }
    print_table(&t);
}

fn cell_text(c: &BoardCell) -> String {
    let mut lines = vec![c.current_release.clone().unwrap_or_else(|| "-".into())];
    if let Some(r) = &c.incoming_release {
        match &c.incoming_state {
            Some(s) => lines.push(format!("→ {r} {s}")),
            None => lines.push(format!("→ {r}")),
        }
    }
    if let Some(who) = &c.held_by {
        let release = c
            .hold_release
            .as_deref()
            .map(|r| format!(" for {r}"))
            .unwrap_or_default();
        lines.push(format!("held by {who}{release}"));
        if let Some(note) = c.hold_note.as_deref().filter(|n| !n.is_empty()) {
            lines.push(format!("\"{}\"", crate::output::short(note, 30)));
        }
        if let Some(until) = c.hold_expires_at {
            lines.push(format!("until {}", time(until)));
        }
    }
    lines.join("\n")
}
