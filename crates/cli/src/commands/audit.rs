//! `prism audit`: the audit log, newest first (admins).

use prism_api::audit::AuditEvent;

use crate::context::{Ctx, GlobalArgs};
use crate::error::CliResult;
use crate::output::{list_table, print_table, short, time};

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Only events by this user
    #[arg(long)]
    pub actor: Option<String>,
    /// Only this action, e.g. release.promote
    #[arg(long)]
    pub action: Option<String>,
    /// Only events about this kind of record, e.g. release
    #[arg(long)]
    pub record_type: Option<String>,
    /// Only events about this record, e.g. r42
    #[arg(long)]
    pub record_id: Option<String>,
    /// Events at or after this time (RFC 3339 or Unix ms)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Events before this time (RFC 3339 or Unix ms)
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Only events older than this event id (the next page)
    #[arg(long, value_name = "ID")]
    pub before: Option<i64>,
    /// At most this many (1 to 1000; default 100)
    #[arg(long, value_name = "N")]
    pub limit: Option<i64>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

pub async fn run(ctx: &Ctx, args: AuditArgs) -> CliResult<()> {
    let query = [
        ("actor", args.actor),
        ("action", args.action),
        ("record_type", args.record_type),
        ("record_id", args.record_id),
        ("since", args.since),
        ("until", args.until),
        ("before", args.before.map(|b| b.to_string())),
        ("limit", args.limit.map(|l| l.to_string())),
    ];
    let answer = ctx.client.get(&["audit"], &query).await?;
    super::show(ctx, &answer, |events: Vec<AuditEvent>| {
        let mut t = list_table(&["ID", "TIME", "ACTOR", "ADDRESS", "ACTION", "RECORD", "DETAIL"]);
        for e in events {
            t.add_row(vec![
                e.id.to_string(),
                time(e.at),
                e.actor,
                if e.address.is_empty() { "-".into() } else { e.address },
                e.action,
                format!("{} {}", e.record_type, e.record_id),
                short(&e.detail.to_string(), 60),
            ]);
        }
        print_table(&t);
    })
}
