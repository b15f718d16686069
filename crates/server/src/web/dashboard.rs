//! The dashboard: the applications x environments board (what runs where,
//! what is on its way in, which environment is held and by whom) and the
//! caller's queue by role. A fixed number of queries, whatever the number of
//! applications: one for the board, one per queue.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Html;
use minijinja::context;
use prism_store::releases::{self, ReleaseFilter};
use prism_store::{deploys, environments, projects, slots};
use serde::Serialize;

use super::error::WebResult;
use super::render::page as render;
use super::session::Web;
use crate::auth::Caller;
use crate::state::AppState;

/// The board shows at most this many applications; the applications page lists all.
const BOARD_ROWS: usize = 200;
const QUEUE_LEN: i64 = 20;

#[derive(Serialize)]
struct BoardRow {
    application: String,
    cells: Vec<slots::BoardCell>,
}

/// The caller's roles across projects: which queues to show.
pub struct RoleFlags {
    pub developer: bool,
    pub tester: bool,
    pub operator: bool,
}

pub async fn role_flags(c: &mut prism_store::AnyConnection, caller: &Caller) -> WebResult<RoleFlags> {
    let admin = caller.is_admin();
    let ms = projects::memberships_of(c, caller.user.id).await?;
    let has = |r: &str| admin || ms.iter().any(|m| m.role == r);
    Ok(RoleFlags {
        developer: has("developer"),
        tester: has("tester"),
        operator: has("operator"),
    })
}

async fn releases_in(
    c: &mut prism_store::AnyConnection,
    caller: &Caller,
    state: &str,
) -> WebResult<Vec<releases::Release>> {
    Ok(releases::list(
        c,
        &ReleaseFilter {
            visible_to: crate::ops::access::visibility(caller),
            state: Some(state.into()),
            limit: QUEUE_LEN,
            ..Default::default()
        },
    )
    .await?)
}

pub async fn page(State(state): State<AppState>, Web(caller): Web) -> WebResult<Html<String>> {
    let mut c = state.store.conn().await?;
    let envs = environments::list(&mut c).await?;
    let visible = crate::ops::access::visibility(&caller);
    // One page of the board (the first applications by name), every hold,
    // and the count: what this page costs does not grow with the number of
    // applications beyond it.
    let page = slots::BoardScope::Page {
        after: None,
        limit: BOARD_ROWS as i64,
    };
    let cells = slots::board(&mut c, visible, page).await?;
    let holds = slots::held(&mut c, visible).await?;
    let total_apps = slots::visible_applications(&mut c, visible).await? as usize;
    let mut rows: BTreeMap<String, Vec<slots::BoardCell>> = BTreeMap::new();
    for cell in cells {
        rows.entry(cell.application.clone()).or_default().push(cell);
    }
    let board: Vec<BoardRow> = rows
        .into_iter()
        .map(|(application, cells)| BoardRow { application, cells })
        .collect();
    let roles = role_flags(&mut c, &caller).await?;
    let failed_builds = if roles.developer {
        releases_in(&mut c, &caller, "build_failed").await?
    } else {
        vec![]
    };
    let (to_promote, to_pass) = if roles.tester {
        let mut built = releases_in(&mut c, &caller, "built").await?;
        built.extend(releases_in(&mut c, &caller, "passed").await?);
        (built, releases_in(&mut c, &caller, "deployed").await?)
    } else {
        (vec![], vec![])
    };
    let (to_review, to_deploy) = if roles.operator {
        // Every deploy awaiting review, however many deploys came after it
        // (read from the state index, not filtered out of the latest page).
        let filter = deploys::DeployFilter {
            visible_to: crate::ops::access::visibility(&caller),
            state: Some(prism_domain::DeployState::AwaitingReview),
            limit: 200,
            ..Default::default()
        };
        let waiting = deploys::list_filtered(&mut c, &filter).await?;
        (waiting, releases_in(&mut c, &caller, "promoted").await?)
    } else {
        (vec![], vec![])
    };
    drop(c);
    let closed_envs = super::deploys::closed_environments(&state).await?;
    render(
        &state,
        &caller,
        "dashboard.html",
        context! {
            nav => "dashboard",
            closed_envs => closed_envs,
            envs => envs.iter().map(|e| &e.name).collect::<Vec<_>>(),
            board => board,
            total_apps => total_apps,
            shown_apps => BOARD_ROWS.min(total_apps),
            holds => holds,
            roles => context! { developer => roles.developer, tester => roles.tester, operator => roles.operator },
            failed_builds => failed_builds,
            to_promote => to_promote,
            to_pass => to_pass,
            to_review => to_review,
            to_deploy => to_deploy,
        },
    )
    .await
}
