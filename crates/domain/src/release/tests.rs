//! Exhaustive tests of the release state machine: every state against every
//! action, every actor against every action, the lifecycle order, the slot
//! rules (busy, held, overrides), the exact slot effects, the hold rules and
//! the state's stored form.

use super::*;
use crate::{EnvPolicy, ReleaseId, Role, RoleSet, ValidationError};

use ReleaseState as S;

// ---------------------------------------------------------------------------
// Fixture
// ---------------------------------------------------------------------------

const FAT: EnvId = 1;
const UAT: EnvId = 2;
const PRD: EnvId = 3;
const UNKNOWN: EnvId = 99;

const SYSTEM_NEEDED: &str = "admin (build and deploy results come from Prism's engine or an admin's integration)";

/// FAT (development), UAT and PRD (formal), in that order.
fn lifecycle() -> Vec<EnvStep> {
    vec![
        EnvStep {
            id: FAT,
            name: "FAT".into(),
            position: 1,
            policy: EnvPolicy::development(),
        },
        EnvStep {
            id: UAT,
            name: "UAT".into(),
            position: 2,
            policy: EnvPolicy::formal(),
        },
        EnvStep {
            id: PRD,
            name: "PRD".into(),
            position: 3,
            policy: EnvPolicy::formal(),
        },
    ]
}

fn env_name(id: EnvId) -> &'static str {
    match id {
        FAT => "FAT",
        UAT => "UAT",
        PRD => "PRD",
        other => panic!("no env {other} in the fixture"),
    }
}

/// The release under test.
fn this() -> ReleaseId {
    ReleaseId::from_seq(7)
}

/// Some other release of the same application.
fn other() -> ReleaseId {
    ReleaseId::from_seq(8)
}

fn actor(roles: RoleSet, system: bool) -> Actor {
    Actor { roles, system }
}
fn developer() -> Actor {
    actor(RoleSet::of([Role::Developer]), false)
}
fn tester() -> Actor {
    actor(RoleSet::of([Role::Tester]), false)
}
fn operator() -> Actor {
    actor(RoleSet::of([Role::Operator]), false)
}
fn admin() -> Actor {
    actor(RoleSet::admin(), false)
}
fn nobody() -> Actor {
    actor(RoleSet::none(), false)
}
fn system() -> Actor {
    actor(RoleSet::none(), true)
}

/// The actors of the role matrix, in its column order.
fn actors() -> [(&'static str, Actor); 6] {
    [
        ("developer", developer()),
        ("tester", tester()),
        ("operator", operator()),
        ("admin", admin()),
        ("no role", nobody()),
        ("system", system()),
    ]
}

/// Actors that pass every role check.
fn privileged_actors() -> [(&'static str, Actor); 2] {
    [
        ("admin+system", actor(RoleSet::admin(), true)),
        ("all roles+system", actor(RoleSet::of(Role::ALL), true)),
    ]
}

fn promote(to: EnvId) -> Action {
    Action::Promote {
        to,
        override_reason: None,
    }
}
fn promote_overriding(to: EnvId, reason: &str) -> Action {
    Action::Promote {
        to,
        override_reason: Some(reason.into()),
    }
}
fn deploy(env: EnvId) -> Action {
    Action::StartDeploy { env }
}

/// All 11 variants, each env-carrying one in every env of the lifecycle (21 in all).
fn all_states() -> Vec<ReleaseState> {
    vec![
        S::Created,
        S::Building,
        S::Built,
        S::BuildFailed,
        S::Promoted(FAT),
        S::Promoted(UAT),
        S::Promoted(PRD),
        S::Deploying(FAT),
        S::Deploying(UAT),
        S::Deploying(PRD),
        S::Deployed(FAT),
        S::Deployed(UAT),
        S::Deployed(PRD),
        S::DeployFailed(FAT),
        S::DeployFailed(UAT),
        S::DeployFailed(PRD),
        S::Passed(FAT),
        S::Passed(UAT),
        S::Passed(PRD),
        S::Closed,
        S::Abandoned,
    ]
}

/// All 10 variants, each env-carrying one for every env of the lifecycle (14 in all).
fn all_actions() -> Vec<Action> {
    vec![
        Action::StartBuild,
        Action::BuildSucceeded,
        Action::BuildFailed,
        promote(FAT),
        promote(UAT),
        promote(PRD),
        deploy(FAT),
        deploy(UAT),
        deploy(PRD),
        Action::DeploySucceeded,
        Action::DeployFailed,
        Action::Pass,
        Action::Close,
        Action::Abandon,
    ]
}

fn decide_as(
    actor: &Actor,
    state: ReleaseState,
    action: &Action,
    slot: &SlotView,
) -> Result<Decision, TransitionError> {
    decide(&lifecycle(), actor, this(), state, action, slot)
}

fn empty_slot() -> SlotView {
    SlotView::default()
}
fn held_by(release: ReleaseId, holder: &str) -> SlotView {
    SlotView {
        hold: Some(Hold {
            release,
            holder: holder.into(),
        }),
        incoming: None,
    }
}
fn with_incoming(release: ReleaseId, state: ReleaseState) -> SlotView {
    SlotView {
        hold: None,
        incoming: Some((release, state)),
    }
}

fn decision(next: ReleaseState, effects: Vec<SlotEffect>) -> Decision {
    Decision {
        next,
        effects,
        overrode_hold: None,
    }
}
fn forbidden(action: &'static str, needed: &str) -> TransitionError {
    TransitionError::Forbidden {
        action,
        needed: needed.into(),
    }
}
fn not_allowed(action: &Action, from: ReleaseState) -> TransitionError {
    TransitionError::NotAllowed {
        action: action.name(),
        from: from.kind(),
    }
}
fn out_of_order(message: &str) -> TransitionError {
    TransitionError::OutOfOrder(message.into())
}

/// The field of an `Invalid` error, panicking on anything else.
fn invalid_field<T: fmt::Debug>(result: Result<T, TransitionError>) -> String {
    match result {
        Err(TransitionError::Invalid(ValidationError { field, .. })) => field,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Every state x every action
// ---------------------------------------------------------------------------

/// The complete list of transitions a privileged actor may take with an
/// empty slot, with the next state and the exact slot effects. Anything not
/// listed must be refused.
fn allowed_transitions() -> Vec<(ReleaseState, Action, ReleaseState, Vec<SlotEffect>)> {
    use SlotEffect::{ClearIncoming, SetCurrent, SetIncoming};
    vec![
        // Build.
        (S::Created, Action::StartBuild, S::Building, vec![]),
        (S::BuildFailed, Action::StartBuild, S::Building, vec![]),
        (S::Building, Action::BuildSucceeded, S::Built, vec![]),
        (S::Building, Action::BuildFailed, S::BuildFailed, vec![]),
        // Promote: into the first env from built, then only after passing the previous one.
        (S::Built, promote(FAT), S::Promoted(FAT), vec![SetIncoming(FAT)]),
        (
            S::Passed(FAT),
            promote(UAT),
            S::Promoted(UAT),
            vec![SetIncoming(UAT), ClearIncoming(FAT)],
        ),
        (
            S::Passed(UAT),
            promote(PRD),
            S::Promoted(PRD),
            vec![SetIncoming(PRD), ClearIncoming(UAT)],
        ),
        // Deploy: into the env the release is promoted to, again after a failure, or a redeploy.
        (S::Promoted(FAT), deploy(FAT), S::Deploying(FAT), vec![SetIncoming(FAT)]),
        (S::Promoted(UAT), deploy(UAT), S::Deploying(UAT), vec![SetIncoming(UAT)]),
        (S::Promoted(PRD), deploy(PRD), S::Deploying(PRD), vec![SetIncoming(PRD)]),
        (
            S::DeployFailed(FAT),
            deploy(FAT),
            S::Deploying(FAT),
            vec![SetIncoming(FAT)],
        ),
        (
            S::DeployFailed(UAT),
            deploy(UAT),
            S::Deploying(UAT),
            vec![SetIncoming(UAT)],
        ),
        (
            S::DeployFailed(PRD),
            deploy(PRD),
            S::Deploying(PRD),
            vec![SetIncoming(PRD)],
        ),
        (S::Deployed(FAT), deploy(FAT), S::Deploying(FAT), vec![SetIncoming(FAT)]),
        (S::Deployed(UAT), deploy(UAT), S::Deploying(UAT), vec![SetIncoming(UAT)]),
        (S::Deployed(PRD), deploy(PRD), S::Deploying(PRD), vec![SetIncoming(PRD)]),
        // Deploy results.
        (
            S::Deploying(FAT),
            Action::DeploySucceeded,
            S::Deployed(FAT),
            vec![SetCurrent(FAT)],
        ),
        (
            S::Deploying(UAT),
            Action::DeploySucceeded,
            S::Deployed(UAT),
            vec![SetCurrent(UAT)],
        ),
        (
            S::Deploying(PRD),
            Action::DeploySucceeded,
            S::Deployed(PRD),
            vec![SetCurrent(PRD)],
        ),
        (
            S::Deploying(FAT),
            Action::DeployFailed,
            S::DeployFailed(FAT),
            vec![ClearIncoming(FAT)],
        ),
        (
            S::Deploying(UAT),
            Action::DeployFailed,
            S::DeployFailed(UAT),
            vec![ClearIncoming(UAT)],
        ),
        (
            S::Deploying(PRD),
            Action::DeployFailed,
            S::DeployFailed(PRD),
            vec![ClearIncoming(PRD)],
        ),
        // Pass.
        (S::Deployed(FAT), Action::Pass, S::Passed(FAT), vec![]),
        (S::Deployed(UAT), Action::Pass, S::Passed(UAT), vec![]),
        (S::Deployed(PRD), Action::Pass, S::Passed(PRD), vec![]),
        // Close: from every non-final state.
        (S::Created, Action::Close, S::Closed, vec![]),
        (S::Building, Action::Close, S::Closed, vec![]),
        (S::Built, Action::Close, S::Closed, vec![]),
        (S::BuildFailed, Action::Close, S::Closed, vec![]),
        (S::Promoted(FAT), Action::Close, S::Closed, vec![ClearIncoming(FAT)]),
        (S::Promoted(UAT), Action::Close, S::Closed, vec![ClearIncoming(UAT)]),
        (S::Promoted(PRD), Action::Close, S::Closed, vec![ClearIncoming(PRD)]),
        (S::Deploying(FAT), Action::Close, S::Closed, vec![ClearIncoming(FAT)]),
        (S::Deploying(UAT), Action::Close, S::Closed, vec![ClearIncoming(UAT)]),
        (S::Deploying(PRD), Action::Close, S::Closed, vec![ClearIncoming(PRD)]),
        (S::Deployed(FAT), Action::Close, S::Closed, vec![ClearIncoming(FAT)]),
        (S::Deployed(UAT), Action::Close, S::Closed, vec![ClearIncoming(UAT)]),
        (S::Deployed(PRD), Action::Close, S::Closed, vec![ClearIncoming(PRD)]),
        (S::DeployFailed(FAT), Action::Close, S::Closed, vec![ClearIncoming(FAT)]),
        (S::DeployFailed(UAT), Action::Close, S::Closed, vec![ClearIncoming(UAT)]),
        (S::DeployFailed(PRD), Action::Close, S::Closed, vec![ClearIncoming(PRD)]),
        (S::Passed(FAT), Action::Close, S::Closed, vec![ClearIncoming(FAT)]),
        (S::Passed(UAT), Action::Close, S::Closed, vec![ClearIncoming(UAT)]),
        (S::Passed(PRD), Action::Close, S::Closed, vec![ClearIncoming(PRD)]),
        // Abandon: likewise.
        (S::Created, Action::Abandon, S::Abandoned, vec![]),
        (S::Building, Action::Abandon, S::Abandoned, vec![]),
        (S::Built, Action::Abandon, S::Abandoned, vec![]),
        (S::BuildFailed, Action::Abandon, S::Abandoned, vec![]),
        (
            S::Promoted(FAT),
            Action::Abandon,
            S::Abandoned,
            vec![ClearIncoming(FAT)],
        ),
        (
            S::Promoted(UAT),
            Action::Abandon,
            S::Abandoned,
            vec![ClearIncoming(UAT)],
        ),
        (
            S::Promoted(PRD),
            Action::Abandon,
            S::Abandoned,
            vec![ClearIncoming(PRD)],
        ),
        (
            S::Deploying(FAT),
            Action::Abandon,
            S::Abandoned,
            vec![ClearIncoming(FAT)],
        ),
        (
            S::Deploying(UAT),
            Action::Abandon,
            S::Abandoned,
            vec![ClearIncoming(UAT)],
        ),
        (
            S::Deploying(PRD),
            Action::Abandon,
            S::Abandoned,
            vec![ClearIncoming(PRD)],
        ),
        (
            S::Deployed(FAT),
            Action::Abandon,
            S::Abandoned,
            vec![ClearIncoming(FAT)],
        ),
        (
            S::Deployed(UAT),
            Action::Abandon,
            S::Abandoned,
            vec![ClearIncoming(UAT)],
        ),
        (
            S::Deployed(PRD),
            Action::Abandon,
            S::Abandoned,
            vec![ClearIncoming(PRD)],
        ),
        (
            S::DeployFailed(FAT),
            Action::Abandon,
            S::Abandoned,
            vec![ClearIncoming(FAT)],
        ),
        (
            S::DeployFailed(UAT),
            Action::Abandon,
            S::Abandoned,
            vec![ClearIncoming(UAT)],
        ),
        (
            S::DeployFailed(PRD),
            Action::Abandon,
            S::Abandoned,
            vec![ClearIncoming(PRD)],
        ),
        (S::Passed(FAT), Action::Abandon, S::Abandoned, vec![ClearIncoming(FAT)]),
        (S::Passed(UAT), Action::Abandon, S::Abandoned, vec![ClearIncoming(UAT)]),
        (S::Passed(PRD), Action::Abandon, S::Abandoned, vec![ClearIncoming(PRD)]),
    ]
}

/// How a privileged actor is refused a pair that is not in the allowed list:
/// a promotion from a promotable state is out of lifecycle order (backwards or
/// into the same env, or skipping an env it must pass first); anything else
/// does not apply to the state.
fn expected_refusal(state: ReleaseState, action: &Action) -> TransitionError {
    let promotable = matches!(
        state,
        S::Built | S::Promoted(_) | S::Deployed(_) | S::DeployFailed(_) | S::Passed(_)
    );
    match action {
        Action::Promote { to, .. } if promotable => match state.env() {
            Some(from) if *to <= from => out_of_order(&format!(
                "{} does not come after {} in the lifecycle",
                env_name(*to),
                env_name(from)
            )),
            // In the fixture ids are positions, so the previous env is `to - 1`.
            _ => out_of_order(&format!(
                "{} requires the release to pass {} first",
                env_name(*to),
                env_name(to - 1)
            )),
        },
        _ => not_allowed(action, state),
    }
}

/// What a privileged actor gets for a pair, with an empty slot.
fn expected_outcome(state: ReleaseState, action: &Action) -> Result<Decision, TransitionError> {
    let allowed = allowed_transitions();
    match allowed.iter().find(|(s, a, _, _)| *s == state && a == action) {
        Some((_, _, next, effects)) => Ok(decision(*next, effects.clone())),
        None => Err(expected_refusal(state, action)),
    }
}

#[test]
fn fixture_covers_every_variant() {
    let states = all_states();
    assert_eq!(states.len(), 4 + 5 * 3 + 2);
    let mut kinds: Vec<&str> = states.iter().map(|s| s.kind()).collect();
    kinds.dedup();
    assert_eq!(kinds, ReleaseState::KINDS);

    let mut names: Vec<&str> = all_actions().iter().map(|a| a.name()).collect();
    names.dedup();
    assert_eq!(
        names,
        [
            "start_build",
            "build_succeeded",
            "build_failed",
            "promote",
            "deploy",
            "deploy_succeeded",
            "deploy_failed",
            "pass",
            "close",
            "abandon"
        ]
    );
}

#[test]
fn allowed_list_is_well_formed() {
    let allowed = allowed_transitions();
    let states = all_states();
    let actions = all_actions();
    for (i, (state, action, _, _)) in allowed.iter().enumerate() {
        assert!(states.contains(state), "{state} is not in the fixture");
        assert!(actions.contains(action), "{action:?} is not in the fixture");
        let dups = allowed.iter().filter(|(s, a, _, _)| s == state && a == action).count();
        assert_eq!(dups, 1, "entry {i} ({state}, {action:?}) is listed {dups} times");
    }
    assert_eq!(allowed.len(), 2 + 2 + 3 + 9 + 3 + 3 + 3 + 19 + 19);
}

#[test]
fn every_state_against_every_action() {
    let mut successes = 0;
    for (who, actor) in privileged_actors() {
        for state in all_states() {
            for action in all_actions() {
                let got = decide_as(&actor, state, &action, &empty_slot());
                let want = expected_outcome(state, &action);
                assert_eq!(got, want, "{who}: {action:?} from {state}");
                successes += usize::from(got.is_ok());
            }
        }
    }
    assert_eq!(successes, 2 * allowed_transitions().len());
}

#[test]
fn final_states_accept_nothing() {
    for state in [S::Closed, S::Abandoned] {
        assert!(state.is_final());
        for action in all_actions() {
            let got = decide_as(&actor(RoleSet::admin(), true), state, &action, &empty_slot());
            assert_eq!(got, Err(not_allowed(&action, state)), "{action:?} from {state}");
        }
    }
    for state in all_states()
        .into_iter()
        .filter(|s| !matches!(s, S::Closed | S::Abandoned))
    {
        assert!(!state.is_final(), "{state}");
    }
}

#[test]
fn unknown_environments_are_refused() {
    let a = actor(RoleSet::admin(), true);
    for state in all_states() {
        for action in [promote(UNKNOWN), promote_overriding(UNKNOWN, "urgent"), deploy(UNKNOWN)] {
            assert_eq!(
                decide_as(&a, state, &action, &empty_slot()),
                Err(TransitionError::UnknownEnv(UNKNOWN)),
                "{action:?} from {state}"
            );
        }
    }
    // A release standing in an env the lifecycle no longer has cannot be promoted from it.
    for state in [
        S::Promoted(UNKNOWN),
        S::Deployed(UNKNOWN),
        S::DeployFailed(UNKNOWN),
        S::Passed(UNKNOWN),
    ] {
        assert_eq!(
            decide_as(&a, state, &promote(PRD), &empty_slot()),
            Err(TransitionError::UnknownEnv(UNKNOWN))
        );
    }
}

// ---------------------------------------------------------------------------
// Roles
// ---------------------------------------------------------------------------

/// For every action: which of developer, tester, operator, admin, no role and
/// system pass the role check, and what a refused one is told is needed.
fn role_matrix() -> Vec<(Action, [bool; 6], &'static str)> {
    const T: bool = true;
    const F: bool = false;
    vec![
        //                        dev tst ops adm non sys
        (Action::StartBuild, [T, F, F, T, F, T], "developer"),
        (Action::BuildSucceeded, [F, F, F, F, F, T], SYSTEM_NEEDED),
        (Action::BuildFailed, [F, F, F, F, F, T], SYSTEM_NEEDED),
        (promote(FAT), [T, T, T, T, F, F], "tester or operator or developer"),
        (promote(UAT), [F, T, T, T, F, F], "tester or operator"),
        (promote(PRD), [F, T, T, T, F, F], "tester or operator"),
        (deploy(FAT), [T, F, T, T, F, F], "developer or operator"),
        (deploy(UAT), [F, F, T, T, F, F], "operator"),
        (deploy(PRD), [F, F, T, T, F, F], "operator"),
        (Action::DeploySucceeded, [F, F, F, F, F, T], SYSTEM_NEEDED),
        (Action::DeployFailed, [F, F, F, F, F, T], SYSTEM_NEEDED),
        (Action::Pass, [F, T, T, T, F, F], "tester or operator"),
        (Action::Close, [T, T, T, T, F, F], "developer or tester or operator"),
        (Action::Abandon, [T, T, T, T, F, F], "developer or tester or operator"),
    ]
}

#[test]
fn role_matrix_covers_every_action() {
    let matrix = role_matrix();
    let actions: Vec<Action> = matrix.iter().map(|(a, _, _)| a.clone()).collect();
    assert_eq!(actions, all_actions());
}

/// The role check comes before anything else about a known env: an actor the
/// matrix refuses gets `Forbidden` from every state, and an actor it admits
/// gets exactly what a privileged actor gets.
#[test]
fn every_actor_against_every_state_and_action() {
    for (action, permitted, needed) in role_matrix() {
        for ((who, actor), may) in actors().into_iter().zip(permitted) {
            for state in all_states() {
                let got = decide_as(&actor, state, &action, &empty_slot());
                let want = if may {
                    expected_outcome(state, &action)
                } else {
                    Err(forbidden(action.name(), needed))
                };
                assert_eq!(got, want, "{who}: {action:?} from {state}");
            }
        }
    }
}

/// One state per action where the action applies, so the role check alone decides.
fn applicable_state(action: &Action) -> ReleaseState {
    match action {
        Action::StartBuild => S::Created,
        Action::BuildSucceeded | Action::BuildFailed => S::Building,
        Action::Promote { to, .. } if *to == FAT => S::Built,
        Action::Promote { to, .. } => S::Passed(to - 1),
        Action::StartDeploy { env } => S::Promoted(*env),
        Action::DeploySucceeded | Action::DeployFailed => S::Deploying(UAT),
        Action::Pass => S::Deployed(UAT),
        Action::Close | Action::Abandon => S::Passed(UAT),
    }
}

#[test]
fn role_matrix_where_each_action_applies() {
    for (action, permitted, needed) in role_matrix() {
        let state = applicable_state(&action);
        for ((who, actor), may) in actors().into_iter().zip(permitted) {
            let got = decide_as(&actor, state, &action, &empty_slot());
            if may {
                assert!(got.is_ok(), "{who} should {action:?} from {state}: {got:?}");
            } else {
                assert_eq!(
                    got,
                    Err(forbidden(action.name(), needed)),
                    "{who}: {action:?} from {state}"
                );
            }
        }
    }
}

#[test]
fn developer_promotes_into_fat_but_not_uat() {
    assert_eq!(
        decide_as(&developer(), S::Built, &promote(FAT), &empty_slot()),
        Ok(decision(S::Promoted(FAT), vec![SlotEffect::SetIncoming(FAT)]))
    );
    assert_eq!(
        decide_as(&developer(), S::Passed(FAT), &promote(UAT), &empty_slot()),
        Err(forbidden("promote", "tester or operator"))
    );
    assert_eq!(
        decide_as(&developer(), S::Passed(UAT), &promote(PRD), &empty_slot()),
        Err(forbidden("promote", "tester or operator"))
    );
}

#[test]
fn developer_deploys_into_fat_only() {
    assert!(decide_as(&developer(), S::Promoted(FAT), &deploy(FAT), &empty_slot()).is_ok());
    assert_eq!(
        decide_as(&developer(), S::Promoted(UAT), &deploy(UAT), &empty_slot()),
        Err(forbidden("deploy", "operator"))
    );
    assert_eq!(
        decide_as(&developer(), S::Promoted(PRD), &deploy(PRD), &empty_slot()),
        Err(forbidden("deploy", "operator"))
    );
}

#[test]
fn testers_never_deploy() {
    for env in [FAT, UAT, PRD] {
        let got = decide_as(&tester(), S::Promoted(env), &deploy(env), &empty_slot());
        assert!(
            matches!(got, Err(TransitionError::Forbidden { action: "deploy", .. })),
            "{env}: {got:?}"
        );
    }
}

#[test]
fn policy_deploy_roles_decide_who_deploys() {
    // A FAT env where only testers deploy.
    let mut lc = lifecycle();
    lc[0].policy.deploy_roles = vec![Role::Tester];
    let got = decide(&lc, &tester(), this(), S::Promoted(FAT), &deploy(FAT), &empty_slot());
    assert_eq!(got, Ok(decision(S::Deploying(FAT), vec![SlotEffect::SetIncoming(FAT)])));
    let got = decide(&lc, &operator(), this(), S::Promoted(FAT), &deploy(FAT), &empty_slot());
    assert_eq!(got, Err(forbidden("deploy", "tester")));
    // Developers may no longer promote into it either.
    let got = decide(&lc, &developer(), this(), S::Built, &promote(FAT), &empty_slot());
    assert_eq!(got, Err(forbidden("promote", "tester or operator")));
}

#[test]
fn only_the_system_reports_results() {
    let everyone_but_system = [
        developer(),
        tester(),
        operator(),
        admin(),
        nobody(),
        actor(RoleSet::of(Role::ALL).with_admin(true), false),
    ];
    for action in [Action::BuildSucceeded, Action::BuildFailed] {
        for a in everyone_but_system {
            assert_eq!(
                decide_as(&a, S::Building, &action, &empty_slot()),
                Err(forbidden(action.name(), SYSTEM_NEEDED))
            );
        }
    }
    for action in [Action::DeploySucceeded, Action::DeployFailed] {
        for a in everyone_but_system {
            assert_eq!(
                decide_as(&a, S::Deploying(PRD), &action, &empty_slot()),
                Err(forbidden(action.name(), SYSTEM_NEEDED))
            );
        }
    }
    // The system flag is enough whatever the roles.
    let sys_dev = actor(RoleSet::of([Role::Developer]), true);
    assert_eq!(
        decide_as(&sys_dev, S::Building, &Action::BuildSucceeded, &empty_slot()),
        Ok(decision(S::Built, vec![]))
    );
    assert_eq!(
        decide_as(&system(), S::Deploying(PRD), &Action::DeploySucceeded, &empty_slot()),
        Ok(decision(S::Deployed(PRD), vec![SlotEffect::SetCurrent(PRD)]))
    );
}

#[test]
fn the_system_flag_grants_no_project_role() {
    // Beyond starting builds, the system needs real roles.
    assert_eq!(
        decide_as(&system(), S::Created, &Action::StartBuild, &empty_slot()),
        Ok(decision(S::Building, vec![]))
    );
    assert!(matches!(
        decide_as(&system(), S::Built, &promote(FAT), &empty_slot()),
        Err(TransitionError::Forbidden { .. })
    ));
    assert!(matches!(
        decide_as(&system(), S::Deployed(FAT), &Action::Pass, &empty_slot()),
        Err(TransitionError::Forbidden { .. })
    ));
    assert!(matches!(
        decide_as(&system(), S::Built, &Action::Close, &empty_slot()),
        Err(TransitionError::Forbidden { .. })
    ));
}

#[test]
fn pass_needs_tester_or_operator() {
    for a in [
        tester(),
        operator(),
        admin(),
        actor(RoleSet::of([Role::Developer, Role::Tester]), false),
    ] {
        assert_eq!(
            decide_as(&a, S::Deployed(UAT), &Action::Pass, &empty_slot()),
            Ok(decision(S::Passed(UAT), vec![]))
        );
    }
    for a in [
        developer(),
        nobody(),
        system(),
        actor(RoleSet::of([Role::Developer]), true),
    ] {
        assert_eq!(
            decide_as(&a, S::Deployed(UAT), &Action::Pass, &empty_slot()),
            Err(forbidden("pass", "tester or operator"))
        );
    }
}

#[test]
fn close_and_abandon_need_any_project_role() {
    for (action, next) in [(Action::Close, S::Closed), (Action::Abandon, S::Abandoned)] {
        for a in [developer(), tester(), operator(), admin()] {
            assert_eq!(
                decide_as(&a, S::Built, &action, &empty_slot()),
                Ok(decision(next, vec![]))
            );
        }
        for a in [nobody(), system()] {
            assert_eq!(
                decide_as(&a, S::Built, &action, &empty_slot()),
                Err(forbidden(action.name(), "developer or tester or operator"))
            );
        }
    }
}

#[test]
fn non_member_is_refused_everything() {
    let outsider = nobody();
    assert!(!outsider.roles.is_member());
    for state in all_states() {
        for action in all_actions() {
            for slot in [
                empty_slot(),
                held_by(other(), "alice"),
                with_incoming(other(), S::Deploying(UAT)),
            ] {
                let got = decide_as(&outsider, state, &action, &slot);
                assert!(
                    matches!(&got, Err(TransitionError::Forbidden { action: a, .. }) if *a == action.name()),
                    "{action:?} from {state}: {got:?}"
                );
            }
        }
        let got = decide_as(
            &outsider,
            state,
            &promote_overriding(UAT, "urgent"),
            &held_by(other(), "alice"),
        );
        assert!(
            matches!(got, Err(TransitionError::Forbidden { .. })),
            "{state}: {got:?}"
        );
    }
    assert_eq!(may_hold(&outsider), Err(forbidden("hold", "tester or operator")));
    let hold = Hold {
        release: other(),
        holder: "alice".into(),
    };
    assert_eq!(
        may_release_hold(&outsider, "alice", &hold, Some("done")),
        Err(forbidden("release a hold", "tester or operator"))
    );
}

#[test]
fn role_check_comes_before_order_and_slot() {
    // Out of order and held, but the developer is told about the role first.
    let got = decide_as(&developer(), S::Built, &promote(UAT), &held_by(other(), "alice"));
    assert_eq!(got, Err(forbidden("promote", "tester or operator")));
    // Not applicable to the state, but the tester is told about the role first.
    let got = decide_as(&tester(), S::Closed, &deploy(PRD), &empty_slot());
    assert_eq!(got, Err(forbidden("deploy", "operator")));
}

// ---------------------------------------------------------------------------
// Lifecycle order
// ---------------------------------------------------------------------------

#[test]
fn built_goes_to_the_first_environment_only() {
    assert_eq!(
        decide_as(&tester(), S::Built, &promote(FAT), &empty_slot()),
        Ok(decision(S::Promoted(FAT), vec![SlotEffect::SetIncoming(FAT)]))
    );
    assert_eq!(
        decide_as(&operator(), S::Built, &promote(UAT), &empty_slot()),
        Err(out_of_order("UAT requires the release to pass FAT first"))
    );
    assert_eq!(
        decide_as(&operator(), S::Built, &promote(PRD), &empty_slot()),
        Err(out_of_order("PRD requires the release to pass UAT first"))
    );
}

#[test]
fn passed_moves_to_the_next_environment_only() {
    assert_eq!(
        decide_as(&tester(), S::Passed(FAT), &promote(UAT), &empty_slot()),
        Ok(decision(
            S::Promoted(UAT),
            vec![SlotEffect::SetIncoming(UAT), SlotEffect::ClearIncoming(FAT)]
        ))
    );
    assert_eq!(
        decide_as(&operator(), S::Passed(FAT), &promote(PRD), &empty_slot()),
        Err(out_of_order("PRD requires the release to pass UAT first"))
    );
    assert_eq!(
        decide_as(&operator(), S::Passed(UAT), &promote(PRD), &empty_slot()),
        Ok(decision(
            S::Promoted(PRD),
            vec![SlotEffect::SetIncoming(PRD), SlotEffect::ClearIncoming(UAT)]
        ))
    );
}

#[test]
fn an_environment_must_be_passed_before_moving_on() {
    for state in [S::Promoted(FAT), S::Deployed(FAT), S::DeployFailed(FAT)] {
        assert_eq!(
            decide_as(&operator(), state, &promote(UAT), &empty_slot()),
            Err(out_of_order("UAT requires the release to pass FAT first")),
            "{state}"
        );
    }
    for state in [S::Promoted(UAT), S::Deployed(UAT), S::DeployFailed(UAT)] {
        assert_eq!(
            decide_as(&operator(), state, &promote(PRD), &empty_slot()),
            Err(out_of_order("PRD requires the release to pass UAT first")),
            "{state}"
        );
    }
    // Deploying cannot be promoted at all.
    assert_eq!(
        decide_as(&operator(), S::Deploying(FAT), &promote(UAT), &empty_slot()),
        Err(not_allowed(&promote(UAT), S::Deploying(FAT)))
    );
}

#[test]
fn backwards_promotion_is_refused() {
    let cases = [
        (S::Passed(UAT), FAT, "FAT does not come after UAT in the lifecycle"),
        (S::Passed(PRD), FAT, "FAT does not come after PRD in the lifecycle"),
        (S::Passed(PRD), UAT, "UAT does not come after PRD in the lifecycle"),
        (S::Deployed(PRD), UAT, "UAT does not come after PRD in the lifecycle"),
        (
            S::DeployFailed(UAT),
            FAT,
            "FAT does not come after UAT in the lifecycle",
        ),
        (S::Promoted(UAT), FAT, "FAT does not come after UAT in the lifecycle"),
    ];
    for (state, to, message) in cases {
        assert_eq!(
            decide_as(&operator(), state, &promote(to), &empty_slot()),
            Err(out_of_order(message)),
            "{state} -> {to}"
        );
    }
}

#[test]
fn promoting_into_the_same_environment_is_refused() {
    for env in [FAT, UAT, PRD] {
        let message = format!("{0} does not come after {0} in the lifecycle", env_name(env));
        for state in [S::Promoted(env), S::Deployed(env), S::DeployFailed(env), S::Passed(env)] {
            assert_eq!(
                decide_as(&operator(), state, &promote(env), &empty_slot()),
                Err(out_of_order(&message)),
                "{state}"
            );
        }
    }
}

#[test]
fn order_is_checked_before_the_slot() {
    let got = decide_as(&operator(), S::Built, &promote(UAT), &held_by(other(), "alice"));
    assert_eq!(got, Err(out_of_order("UAT requires the release to pass FAT first")));
    let got = decide_as(
        &operator(),
        S::Passed(UAT),
        &promote(FAT),
        &with_incoming(other(), S::Deploying(FAT)),
    );
    assert_eq!(got, Err(out_of_order("FAT does not come after UAT in the lifecycle")));
}

#[test]
fn environments_without_requires_previous_may_be_skipped_to() {
    // DEV1 and DEV2 are both development envs (no requires_previous), then a formal PRD.
    let lc = vec![
        EnvStep {
            id: 11,
            name: "DEV1".into(),
            position: 1,
            policy: EnvPolicy::development(),
        },
        EnvStep {
            id: 12,
            name: "DEV2".into(),
            position: 2,
            policy: EnvPolicy::development(),
        },
        EnvStep {
            id: 13,
            name: "PRD".into(),
            position: 3,
            policy: EnvPolicy::formal(),
        },
    ];
    let run = |state, to| decide(&lc, &operator(), this(), state, &promote(to), &empty_slot());
    assert_eq!(run(S::Built, 12).map(|d| d.next), Ok(S::Promoted(12)));
    assert_eq!(
        run(S::Promoted(11), 12),
        Ok(decision(
            S::Promoted(12),
            vec![SlotEffect::SetIncoming(12), SlotEffect::ClearIncoming(11)]
        ))
    );
    assert_eq!(
        run(S::Passed(11), 13),
        Err(out_of_order("PRD requires the release to pass DEV2 first"))
    );
    assert_eq!(run(S::Passed(12), 13).map(|d| d.next), Ok(S::Promoted(13)));
}

#[test]
fn a_formal_first_environment_takes_built_releases() {
    let lc = vec![
        EnvStep {
            id: 21,
            name: "UAT".into(),
            position: 5,
            policy: EnvPolicy::formal(),
        },
        EnvStep {
            id: 22,
            name: "PRD".into(),
            position: 9,
            policy: EnvPolicy::formal(),
        },
    ];
    let got = decide(&lc, &operator(), this(), S::Built, &promote(21), &empty_slot());
    assert_eq!(got, Ok(decision(S::Promoted(21), vec![SlotEffect::SetIncoming(21)])));
    let got = decide(&lc, &operator(), this(), S::Built, &promote(22), &empty_slot());
    assert_eq!(got, Err(out_of_order("PRD requires the release to pass UAT first")));
}

#[test]
fn lifecycle_order_follows_positions_not_listing_order() {
    let mut lc = lifecycle();
    lc.reverse();
    assert_eq!(
        decide(&lc, &operator(), this(), S::Passed(FAT), &promote(UAT), &empty_slot()).map(|d| d.next),
        Ok(S::Promoted(UAT))
    );
    assert_eq!(
        decide(&lc, &operator(), this(), S::Passed(FAT), &promote(PRD), &empty_slot()),
        Err(out_of_order("PRD requires the release to pass UAT first"))
    );
}

// ---------------------------------------------------------------------------
// Slots: busy, held, overrides
// ---------------------------------------------------------------------------

#[test]
fn another_release_in_flight_makes_the_environment_busy() {
    for (other_state, kind) in [(S::Promoted(UAT), "promoted"), (S::Deploying(UAT), "deploying")] {
        let slot = with_incoming(other(), other_state);
        let busy = TransitionError::Busy {
            env: "UAT".into(),
            release: other(),
            state: kind,
        };
        assert_eq!(
            decide_as(&operator(), S::Passed(FAT), &promote(UAT), &slot),
            Err(busy.clone())
        );
        // A redeploy or retry into the env is just as busy.
        for state in [S::Promoted(UAT), S::Deployed(UAT), S::DeployFailed(UAT)] {
            assert_eq!(
                decide_as(&operator(), state, &deploy(UAT), &slot),
                Err(busy.clone()),
                "{state}"
            );
        }
    }
    let slot = with_incoming(other(), S::Promoted(FAT));
    assert_eq!(
        decide_as(&developer(), S::Built, &promote(FAT), &slot),
        Err(TransitionError::Busy {
            env: "FAT".into(),
            release: other(),
            state: "promoted"
        })
    );
}

#[test]
fn another_release_that_is_not_in_flight_does_not_block() {
    let fine = [
        S::DeployFailed(UAT),
        S::Deployed(UAT),
        S::Passed(UAT),
        S::Closed,
        S::Abandoned,
        // Stale: in flight, but in another env.
        S::Promoted(PRD),
        S::Deploying(FAT),
    ];
    for other_state in fine {
        let slot = with_incoming(other(), other_state);
        assert_eq!(
            decide_as(&operator(), S::Passed(FAT), &promote(UAT), &slot),
            Ok(decision(
                S::Promoted(UAT),
                vec![SlotEffect::SetIncoming(UAT), SlotEffect::ClearIncoming(FAT)]
            )),
            "other is {other_state}"
        );
        assert_eq!(
            decide_as(&operator(), S::DeployFailed(UAT), &deploy(UAT), &slot),
            Ok(decision(S::Deploying(UAT), vec![SlotEffect::SetIncoming(UAT)])),
            "other is {other_state}"
        );
    }
}

#[test]
fn the_release_itself_in_flight_does_not_block() {
    for own_state in [S::Promoted(UAT), S::Deploying(UAT)] {
        let slot = with_incoming(this(), own_state);
        assert_eq!(
            decide_as(&operator(), S::Promoted(UAT), &deploy(UAT), &slot),
            Ok(decision(S::Deploying(UAT), vec![SlotEffect::SetIncoming(UAT)]))
        );
    }
}

#[test]
fn a_hold_by_another_release_blocks() {
    let slot = held_by(other(), "alice");
    let held = TransitionError::Held {
        env: "UAT".into(),
        hold: Hold {
            release: other(),
            holder: "alice".into(),
        },
    };
    for a in [tester(), operator(), admin()] {
        assert_eq!(decide_as(&a, S::Passed(FAT), &promote(UAT), &slot), Err(held.clone()));
    }
    // Deploys cannot override a hold.
    for state in [S::Promoted(UAT), S::Deployed(UAT), S::DeployFailed(UAT)] {
        assert_eq!(
            decide_as(&operator(), state, &deploy(UAT), &slot),
            Err(held.clone()),
            "{state}"
        );
    }
    assert_eq!(held.to_string(), "environment UAT is held for testing of r8 by alice");
}

#[test]
fn busy_is_reported_before_held() {
    let slot = SlotView {
        hold: Some(Hold {
            release: other(),
            holder: "alice".into(),
        }),
        incoming: Some((ReleaseId::from_seq(9), S::Deploying(UAT))),
    };
    let busy = TransitionError::Busy {
        env: "UAT".into(),
        release: ReleaseId::from_seq(9),
        state: "deploying",
    };
    assert_eq!(
        decide_as(&operator(), S::Passed(FAT), &promote(UAT), &slot),
        Err(busy.clone())
    );
    assert_eq!(
        decide_as(&operator(), S::Passed(FAT), &promote_overriding(UAT, "hotfix"), &slot),
        Err(busy)
    );
}

#[test]
fn an_operator_overrides_a_hold_with_a_reason() {
    let hold = Hold {
        release: other(),
        holder: "alice".into(),
    };
    let slot = held_by(other(), "alice");
    for a in [
        operator(),
        admin(),
        actor(RoleSet::of([Role::Tester, Role::Operator]), false),
    ] {
        let got = decide_as(&a, S::Passed(FAT), &promote_overriding(UAT, "hotfix for INC-42"), &slot);
        assert_eq!(
            got,
            Ok(Decision {
                next: S::Promoted(UAT),
                effects: vec![
                    SlotEffect::SetIncoming(UAT),
                    SlotEffect::ClearIncoming(FAT),
                    SlotEffect::ClearHold(UAT)
                ],
                overrode_hold: Some(hold.clone()),
            })
        );
    }
    // From built into the first env: nothing to clear behind.
    let got = decide_as(&operator(), S::Built, &promote_overriding(FAT, "needed now"), &slot);
    assert_eq!(
        got,
        Ok(Decision {
            next: S::Promoted(FAT),
            effects: vec![SlotEffect::SetIncoming(FAT), SlotEffect::ClearHold(FAT)],
            overrode_hold: Some(hold),
        })
    );
}

#[test]
fn only_operators_override() {
    let slot = held_by(other(), "alice");
    let refused = forbidden("override a hold", "operator");
    assert_eq!(
        decide_as(&tester(), S::Passed(FAT), &promote_overriding(UAT, "hotfix"), &slot),
        Err(refused.clone())
    );
    // A developer may promote into FAT, but not over a hold.
    assert_eq!(
        decide_as(&developer(), S::Built, &promote_overriding(FAT, "hotfix"), &slot),
        Err(refused)
    );
    // A developer into UAT is refused the promotion itself.
    assert_eq!(
        decide_as(&developer(), S::Passed(FAT), &promote_overriding(UAT, "hotfix"), &slot),
        Err(forbidden("promote", "tester or operator"))
    );
}

#[test]
fn an_override_needs_a_non_blank_reason() {
    let slot = held_by(other(), "alice");
    for reason in ["", " ", "\t\n  "] {
        for a in [operator(), tester()] {
            let got = decide_as(&a, S::Passed(FAT), &promote_overriding(UAT, reason), &slot);
            assert_eq!(invalid_field(got), "override_reason", "{reason:?}");
        }
    }
}

#[test]
fn an_override_without_a_hold_is_invalid() {
    for a in [operator(), tester()] {
        let got = decide_as(&a, S::Passed(FAT), &promote_overriding(UAT, "hotfix"), &empty_slot());
        assert_eq!(invalid_field(got), "override_reason");
        // The release's own hold is not one to override.
        let got = decide_as(
            &a,
            S::Passed(FAT),
            &promote_overriding(UAT, "hotfix"),
            &held_by(this(), "alice"),
        );
        assert_eq!(invalid_field(got), "override_reason");
    }
    let got = decide_as(&operator(), S::Built, &promote_overriding(FAT, ""), &empty_slot());
    assert_eq!(invalid_field(got), "override_reason");
}

#[test]
fn the_release_own_hold_does_not_block() {
    let slot = held_by(this(), "alice");
    assert_eq!(
        decide_as(&tester(), S::Passed(FAT), &promote(UAT), &slot),
        Ok(decision(
            S::Promoted(UAT),
            vec![SlotEffect::SetIncoming(UAT), SlotEffect::ClearIncoming(FAT)]
        ))
    );
    for state in [S::Promoted(UAT), S::Deployed(UAT), S::DeployFailed(UAT)] {
        assert_eq!(
            decide_as(&operator(), state, &deploy(UAT), &slot),
            Ok(decision(S::Deploying(UAT), vec![SlotEffect::SetIncoming(UAT)])),
            "{state}"
        );
    }
}

#[test]
fn slots_do_not_matter_to_builds_results_or_final_steps() {
    let busy_and_held = SlotView {
        hold: Some(Hold {
            release: other(),
            holder: "alice".into(),
        }),
        incoming: Some((other(), S::Deploying(UAT))),
    };
    let a = actor(RoleSet::admin(), true);
    let cases = [
        (S::Created, Action::StartBuild, S::Building, vec![]),
        (S::Building, Action::BuildSucceeded, S::Built, vec![]),
        (
            S::Deploying(UAT),
            Action::DeploySucceeded,
            S::Deployed(UAT),
            vec![SlotEffect::SetCurrent(UAT)],
        ),
        (
            S::Deploying(UAT),
            Action::DeployFailed,
            S::DeployFailed(UAT),
            vec![SlotEffect::ClearIncoming(UAT)],
        ),
        (S::Deployed(UAT), Action::Pass, S::Passed(UAT), vec![]),
        (
            S::Promoted(UAT),
            Action::Close,
            S::Closed,
            vec![SlotEffect::ClearIncoming(UAT)],
        ),
        (
            S::Promoted(UAT),
            Action::Abandon,
            S::Abandoned,
            vec![SlotEffect::ClearIncoming(UAT)],
        ),
    ];
    for (state, action, next, effects) in cases {
        assert_eq!(
            decide_as(&a, state, &action, &busy_and_held),
            Ok(decision(next, effects)),
            "{action:?} from {state}"
        );
    }
}

// ---------------------------------------------------------------------------
// Effects
// ---------------------------------------------------------------------------

#[test]
fn effects_of_promotion() {
    let got = decide_as(&tester(), S::Passed(FAT), &promote(UAT), &empty_slot()).unwrap();
    assert_eq!(got.next, S::Promoted(UAT));
    assert_eq!(
        got.effects,
        vec![SlotEffect::SetIncoming(UAT), SlotEffect::ClearIncoming(FAT)]
    );
    assert_eq!(got.overrode_hold, None);

    let got = decide_as(&developer(), S::Built, &promote(FAT), &empty_slot()).unwrap();
    assert_eq!(got.effects, vec![SlotEffect::SetIncoming(FAT)]);
}

#[test]
fn effects_of_deploying() {
    let got = decide_as(&operator(), S::Promoted(PRD), &deploy(PRD), &empty_slot()).unwrap();
    assert_eq!(got, decision(S::Deploying(PRD), vec![SlotEffect::SetIncoming(PRD)]));

    let got = decide_as(&system(), S::Deploying(PRD), &Action::DeploySucceeded, &empty_slot()).unwrap();
    assert_eq!(got, decision(S::Deployed(PRD), vec![SlotEffect::SetCurrent(PRD)]));

    let got = decide_as(&system(), S::Deploying(PRD), &Action::DeployFailed, &empty_slot()).unwrap();
    assert_eq!(
        got,
        decision(S::DeployFailed(PRD), vec![SlotEffect::ClearIncoming(PRD)])
    );
}

#[test]
fn effects_of_passing() {
    // Passing ends the release's own hold on the env...
    let got = decide_as(&tester(), S::Deployed(UAT), &Action::Pass, &held_by(this(), "alice")).unwrap();
    assert_eq!(got, decision(S::Passed(UAT), vec![SlotEffect::ClearHold(UAT)]));
    // ...but not another release's, and nothing without a hold.
    let got = decide_as(&tester(), S::Deployed(UAT), &Action::Pass, &held_by(other(), "alice")).unwrap();
    assert_eq!(got, decision(S::Passed(UAT), vec![]));
    let got = decide_as(&tester(), S::Deployed(UAT), &Action::Pass, &empty_slot()).unwrap();
    assert_eq!(got, decision(S::Passed(UAT), vec![]));
}

#[test]
fn effects_of_closing_and_abandoning() {
    for (action, next) in [(Action::Abandon, S::Abandoned), (Action::Close, S::Closed)] {
        for env in [FAT, UAT, PRD] {
            for state in [
                S::Promoted(env),
                S::Deploying(env),
                S::Deployed(env),
                S::DeployFailed(env),
                S::Passed(env),
            ] {
                let got = decide_as(&developer(), state, &action, &held_by(this(), "alice"));
                assert_eq!(
                    got,
                    Ok(decision(
                        next,
                        vec![SlotEffect::ClearIncoming(env), SlotEffect::ClearHold(env)]
                    )),
                    "{action:?} from {state}, own hold"
                );
                let got = decide_as(&developer(), state, &action, &held_by(other(), "alice"));
                assert_eq!(
                    got,
                    Ok(decision(next, vec![SlotEffect::ClearIncoming(env)])),
                    "{action:?} from {state}, other hold"
                );
                let got = decide_as(&developer(), state, &action, &empty_slot());
                assert_eq!(
                    got,
                    Ok(decision(next, vec![SlotEffect::ClearIncoming(env)])),
                    "{action:?} from {state}, no hold"
                );
            }
        }
        // Outside any env there is nothing to clear, whatever the slot says.
        for state in [S::Created, S::Building, S::Built, S::BuildFailed] {
            let got = decide_as(&tester(), state, &action, &held_by(this(), "alice"));
            assert_eq!(got, Ok(decision(next, vec![])), "{action:?} from {state}");
        }
    }
}

#[test]
fn only_overrides_report_an_overridden_hold() {
    let a = actor(RoleSet::admin(), true);
    for state in all_states() {
        for action in all_actions() {
            for slot in [empty_slot(), held_by(this(), "alice")] {
                if let Ok(d) = decide_as(&a, state, &action, &slot) {
                    assert_eq!(d.overrode_hold, None, "{action:?} from {state}");
                    if !matches!(action, Action::Pass | Action::Close | Action::Abandon) {
                        assert!(
                            !d.effects.iter().any(|e| matches!(e, SlotEffect::ClearHold(_))),
                            "{action:?} from {state} cleared a hold"
                        );
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Holds
// ---------------------------------------------------------------------------

#[test]
fn who_may_hold() {
    for a in [
        tester(),
        operator(),
        admin(),
        actor(RoleSet::of([Role::Developer, Role::Tester]), false),
    ] {
        assert_eq!(may_hold(&a), Ok(()));
    }
    for a in [
        developer(),
        nobody(),
        system(),
        actor(RoleSet::of([Role::Developer]), true),
    ] {
        assert_eq!(may_hold(&a), Err(forbidden("hold", "tester or operator")));
    }
}

#[test]
fn the_holder_releases_their_own_hold() {
    let hold = Hold {
        release: other(),
        holder: "alice".into(),
    };
    for a in [tester(), operator(), admin()] {
        assert_eq!(may_release_hold(&a, "alice", &hold, None), Ok(false));
        assert_eq!(may_release_hold(&a, "alice", &hold, Some("")), Ok(false));
        assert_eq!(may_release_hold(&a, "alice", &hold, Some("done testing")), Ok(false));
    }
}

#[test]
fn an_operator_releases_another_users_hold_with_a_reason() {
    let hold = Hold {
        release: other(),
        holder: "alice".into(),
    };
    for a in [
        operator(),
        admin(),
        actor(RoleSet::of([Role::Tester, Role::Operator]), false),
    ] {
        assert_eq!(may_release_hold(&a, "bob", &hold, Some("alice is on leave")), Ok(true));
    }
}

#[test]
fn a_tester_may_not_release_another_users_hold() {
    let hold = Hold {
        release: other(),
        holder: "alice".into(),
    };
    assert_eq!(
        may_release_hold(&tester(), "bob", &hold, Some("alice is on leave")),
        Err(forbidden("release another user's hold", "operator"))
    );
}

#[test]
fn releasing_another_users_hold_needs_a_reason() {
    let hold = Hold {
        release: other(),
        holder: "alice".into(),
    };
    for a in [tester(), operator(), admin()] {
        for reason in [None, Some(""), Some("   "), Some("\t")] {
            assert_eq!(
                invalid_field(may_release_hold(&a, "bob", &hold, reason)),
                "reason",
                "{reason:?}"
            );
        }
    }
}

#[test]
fn developers_and_outsiders_may_not_touch_holds() {
    let hold = Hold {
        release: other(),
        holder: "alice".into(),
    };
    for a in [developer(), nobody(), system()] {
        for caller in ["alice", "bob"] {
            assert_eq!(
                may_release_hold(&a, caller, &hold, Some("because")),
                Err(forbidden("release a hold", "tester or operator")),
                "{caller}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// The state's stored form
// ---------------------------------------------------------------------------

#[test]
fn states_round_trip_through_their_parts() {
    for state in all_states()
        .into_iter()
        .chain([S::Promoted(UNKNOWN), S::Passed(0), S::Deploying(-5)])
    {
        assert!(ReleaseState::KINDS.contains(&state.kind()), "{state}");
        assert_eq!(
            ReleaseState::from_parts(state.kind(), state.env()),
            Some(state),
            "{state}"
        );
    }
}

#[test]
fn kinds_and_envs_of_each_variant() {
    let cases = [
        (S::Created, "created", None),
        (S::Building, "building", None),
        (S::Built, "built", None),
        (S::BuildFailed, "build_failed", None),
        (S::Promoted(FAT), "promoted", Some(FAT)),
        (S::Deploying(UAT), "deploying", Some(UAT)),
        (S::Deployed(PRD), "deployed", Some(PRD)),
        (S::DeployFailed(UAT), "deploy_failed", Some(UAT)),
        (S::Passed(FAT), "passed", Some(FAT)),
        (S::Closed, "closed", None),
        (S::Abandoned, "abandoned", None),
    ];
    for (state, kind, env) in cases {
        assert_eq!(state.kind(), kind);
        assert_eq!(state.env(), env);
    }
    let kinds: Vec<&str> = cases.iter().map(|(_, k, _)| *k).collect();
    assert_eq!(kinds, ReleaseState::KINDS);
}

#[test]
fn from_parts_refuses_mismatched_parts() {
    for kind in ["created", "building", "built", "build_failed", "closed", "abandoned"] {
        assert!(ReleaseState::from_parts(kind, None).is_some(), "{kind}");
        assert_eq!(ReleaseState::from_parts(kind, Some(FAT)), None, "{kind} with an env");
    }
    for kind in ["promoted", "deploying", "deployed", "deploy_failed", "passed"] {
        assert!(ReleaseState::from_parts(kind, Some(FAT)).is_some(), "{kind}");
        assert_eq!(ReleaseState::from_parts(kind, None), None, "{kind} without an env");
    }
    for kind in [
        "",
        "Created",
        "PROMOTED",
        "deploy-failed",
        "build failed",
        " built",
        "released",
        "passed ",
    ] {
        assert_eq!(ReleaseState::from_parts(kind, None), None, "{kind:?}");
        assert_eq!(ReleaseState::from_parts(kind, Some(FAT)), None, "{kind:?}");
    }
}

#[test]
fn states_display_with_their_env() {
    assert_eq!(S::Created.to_string(), "created");
    assert_eq!(S::BuildFailed.to_string(), "build_failed");
    assert_eq!(S::Promoted(UAT).to_string(), "promoted(env 2)");
    assert_eq!(S::DeployFailed(PRD).to_string(), "deploy_failed(env 3)");
    assert_eq!(
        TransitionError::NotAllowed {
            action: "pass",
            from: "built"
        }
        .to_string(),
        "cannot pass a release that is built"
    );
}

#[test]
fn only_promoted_and_deploying_occupy_their_environment() {
    for state in all_states() {
        let expected = matches!(state, S::Promoted(e) | S::Deploying(e) if e == UAT);
        assert_eq!(state.occupies(UAT), expected, "{state}");
    }
    assert!(!S::Promoted(FAT).occupies(UAT));
}
