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
    #[command(flatten)]
    pub global: GlobalArgs,
}

pub async fn run(ctx: &Ctx, args: BoardArgs) -> CliResult<()> {
    let answer = ctx.client.get(&["board"], &[("application", args.app)]).await?;
    super::show(ctx, &answer, print_board)
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
