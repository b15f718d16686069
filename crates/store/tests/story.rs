//! The store's conformance story, run against SQLite and PostgreSQL alike:
//! migrations, unique keys, compare-and-set transitions, and the job queue's
//! claim / lease / takeover rules.

use prism_domain::release::{decide, Action, Actor, EnvStep};
use prism_domain::{ReleaseId, RoleSet};
use prism_store::jobs::{self, NewJob, Outcome};
use prism_store::releases::Step;
use prism_store::{apps, environments, projects, releases, slots, users, Store, StoreError};
use prism_test_support::TestDb;

/// The same story on a fresh SQLite file and a fresh PostgreSQL database;
/// each `TestDb` removes its database when dropped, panics included.
async fn stores() -> Vec<(Store, TestDb)> {
    let mut stores = Vec::new();
    for db in [TestDb::sqlite().await, TestDb::postgres().await] {
        let store = Store::open(&db.url(), 4).await.unwrap();
        stores.push((store, db));
    }
    stores
}

async fn cleanup(store: Store, db: TestDb) {
    store.close().await;
    drop(db);
}

#[tokio::test]
async fn records_and_transitions_behave_the_same_on_both_stores() {
    for (store, db) in stores().await {
        let backend = store.backend();
        let mut tx = store.begin().await.unwrap();
        let u = users::create(&mut tx, "dana", "", "hash", false).await.unwrap();
        tx.commit().await.unwrap();
        // (On PostgreSQL a failed statement aborts its transaction, so each try gets its own.)
        let mut tx = store.begin().await.unwrap();
        let dup = users::create(&mut tx, "dana", "", "hash", false).await.unwrap_err();
        assert!(
            matches!(dup, StoreError::Duplicate { field: "username", .. }),
            "{backend:?}: {dup:?}"
        );
        drop(tx);

        let mut tx = store.begin().await.unwrap();
        let p = projects::create(&mut tx, "shop", "").await.unwrap();
        let json = serde_json::json!({});
        let a = apps::create(
            &mut tx,
            apps::NewApplication {
                project_id: p.id,
                name: "web",
                git_url: "https://g/w",
                build_settings: &json,
                template_settings: &json,
            },
        )
        .await
        .unwrap();
        let policy = prism_domain::EnvPolicy::development();
        let e = environments::create(
            &mut tx,
            environments::NewEnvironment {
                name: "fat",
                position: None,
                cluster_id: None,
                namespace: "fat",
                policy: &policy,
            },
        )
        .await
        .unwrap();
        let r = releases::create(&mut tx, a.id, "main", "note", u.id).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(r.state, "created");

        // Which applications a user may release: admins all, others where they develop.
        let mut c = store.conn().await.unwrap();
        assert_eq!(
            apps::creatable(&mut c, u.id, true, 100).await.unwrap(),
            vec![("web".to_string(), false)]
        );
        assert!(apps::creatable(&mut c, u.id, false, 100).await.unwrap().is_empty());
        drop(c);
        let mut tx = store.begin().await.unwrap();
        projects::grant(&mut tx, p.id, u.id, prism_domain::Role::Tester)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert!(apps::creatable(&mut store.conn().await.unwrap(), u.id, false, 100)
            .await
            .unwrap()
            .is_empty());
        let mut tx = store.begin().await.unwrap();
        projects::grant(&mut tx, p.id, u.id, prism_domain::Role::Developer)
            .await
            .unwrap();
        let settings = serde_json::json!({"stack": "node"});
        let patch = apps::ApplicationPatch {
            git_url: None,
            build_settings: Some(&settings),
            template_settings: None,
        };
        apps::update(&mut tx, a.id, patch).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            apps::creatable(&mut store.conn().await.unwrap(), u.id, false, 100)
                .await
                .unwrap(),
            vec![("web".to_string(), true)]
        );

        // A stale version is refused: the compare-and-set is the store's job.
        let lifecycle = vec![EnvStep {
            id: e.id,
            name: "fat".into(),
            position: e.position,
            policy: policy.clone(),
        }];
        let actor = Actor {
            roles: RoleSet::admin(),
            system: true,
        };
        let d = decide(
            &lifecycle,
            &actor,
            r.id,
            r.parsed_state,
            &Action::StartBuild,
            &Default::default(),
        )
        .unwrap();
        let step = Step {
            action: "start_build",
            slot_version: None,
            actor_id: Some(u.id),
            actor: "dana",
            note: "",
        };
        let mut tx = store.begin().await.unwrap();
        releases::apply(&mut tx, &r, &d, &step).await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        let err = releases::apply(&mut tx, &r, &d, &step).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{backend:?}: {err:?}");
        drop(tx);
        let now = releases::get(&mut store.conn().await.unwrap(), r.id).await.unwrap();
        assert_eq!((now.state, now.version), ("building", 1));

        // A slot changed since it was read refuses the move into it.
        let mut c = store.conn().await.unwrap();
        let slot = slots::get(&mut c, a.id, e.id).await.unwrap();
        drop(c);
        let mut tx = store.begin().await.unwrap();
        slots::set_current(&mut tx, a.id, e.id, r.id.seq()).await.unwrap();
        tx.commit().await.unwrap();
        let built = releases::get(&mut store.conn().await.unwrap(), r.id).await.unwrap();
        let d = decide(
            &lifecycle,
            &actor,
            built.id,
            built.parsed_state,
            &Action::BuildSucceeded,
            &Default::default(),
        )
        .unwrap();
        let mut tx = store.begin().await.unwrap();
        releases::apply(
            &mut tx,
            &built,
            &d,
            &Step {
                action: "build_succeeded",
                ..step
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let built = releases::get(&mut store.conn().await.unwrap(), r.id).await.unwrap();
        let d = decide(
            &lifecycle,
            &actor,
            built.id,
            built.parsed_state,
            &Action::Promote {
                to: e.id,
                override_reason: None,
            },
            &slot.view(),
        )
        .unwrap();
        let mut tx = store.begin().await.unwrap();
        let err = releases::apply(
            &mut tx,
            &built,
            &d,
            &Step {
                action: "promote",
                slot_version: Some(slot.version),
                ..step
            },
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict(_)),
            "{backend:?}: stale slot version must conflict: {err:?}"
        );
        drop(tx);
        // One deploy in progress per application x environment, enforced by the store.
        let new = |kind| prism_store::deploys::NewDeploy {
            release: r.id,
            app_id: a.id,
            env_id: e.id,
            kind,
            requested_by: "dana",
            rollback_of: None,
            manifests: None,
        };
        let mut tx = store.begin().await.unwrap();
        let first = prism_store::deploys::create(&mut tx, new(prism_domain::DeployKind::Deploy))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        let second = prism_store::deploys::create(&mut tx, new(prism_domain::DeployKind::Rollback))
            .await
            .unwrap_err();
        assert!(matches!(second, StoreError::Conflict(_)), "{backend:?}: {second:?}");
        drop(tx);
        let mut tx = store.begin().await.unwrap();
        assert!(prism_store::deploys::advance(
            &mut tx,
            first.id,
            prism_domain::DeployState::Planning,
            prism_domain::DeployEvent::Fail(prism_domain::DeployFailure::Render)
        )
        .await
        .unwrap());
        let failed = prism_store::deploys::get(&mut tx, first.id).await.unwrap();
        assert_eq!(failed.state, prism_domain::DeployState::Failed);
        assert_eq!(failed.failure_kind, Some(prism_domain::DeployFailure::Render));
        assert!(failed.finished_at.is_some());
        // The state machine refuses what it does not allow, before touching the row.
        let refused = prism_store::deploys::advance(
            &mut tx,
            first.id,
            prism_domain::DeployState::Failed,
            prism_domain::DeployEvent::Applied,
        )
        .await
        .unwrap_err();
        assert!(matches!(refused, StoreError::Conflict(_)), "{backend:?}: {refused:?}");
        prism_store::deploys::create(&mut tx, new(prism_domain::DeployKind::Rollback))
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let after = releases::get(&mut store.conn().await.unwrap(), ReleaseId::from_seq(r.id.seq()))
            .await
            .unwrap();
        assert_eq!(
            after.state, "built",
            "{backend:?}: the refused move left the release as it was"
        );
        cleanup(store, db).await;
    }
}

#[tokio::test]
async fn job_queue_claims_leases_and_takes_over() {
    for (store, db) in stores().await {
        let backend = store.backend();
        let mut tx = store.begin().await.unwrap();
        let id = jobs::enqueue(
            &mut tx,
            NewJob {
                kind: "selftest",
                payload: serde_json::json!({}),
                dedup_key: Some("k1".into()),
                run_at: None,
                max_attempts: 2,
            },
        )
        .await
        .unwrap()
        .unwrap();
        let again = jobs::enqueue(
            &mut tx,
            NewJob {
                kind: "selftest",
                payload: serde_json::json!({}),
                dedup_key: Some("k1".into()),
                run_at: None,
                max_attempts: 2,
            },
        )
        .await
        .unwrap();
        assert_eq!(again, None, "{backend:?}: the dedup key enqueues once");
        tx.commit().await.unwrap();

        assert!(
            jobs::claim(&store, "a", &["other"], 60_000).await.unwrap().is_none(),
            "only the asked-for kinds"
        );
        let job = jobs::claim(&store, "a", &["selftest"], 60_000).await.unwrap().unwrap();
        assert_eq!((job.id, job.attempts, job.state.as_str()), (id, 1, "running"));
        assert!(
            jobs::claim(&store, "b", &["selftest"], 60_000).await.unwrap().is_none(),
            "{backend:?}: a leased job is not claimed twice"
        );

        // The lease lapses (the instance died): another instance takes over.
        let mut c = store.conn().await.unwrap();
        sqlx::query("UPDATE jobs SET lease_expires_at = 1 WHERE id = $1")
            .bind(id)
            .execute(&mut *c)
            .await
            .unwrap();
        drop(c);
        let taken = jobs::claim(&store, "b", &["selftest"], 60_000).await.unwrap().unwrap();
        assert_eq!((taken.id, taken.attempts), (id, 2));
        let mut c = store.conn().await.unwrap();
        assert!(
            !jobs::heartbeat(&mut c, id, "a", 60_000).await.unwrap(),
            "the old owner lost the lease"
        );
        drop(c);
        assert!(
            !jobs::finish(&store, id, "a", 1, Outcome::Succeeded).await.unwrap(),
            "the old owner cannot finish it"
        );
        // A failure with attempts left requeues; at max_attempts it fails for good.
        assert!(jobs::finish(
            &store,
            id,
            "b",
            2,
            Outcome::Failed {
                error: "boom".into(),
                retry_in_ms: 0
            }
        )
        .await
        .unwrap());
        // The abandoned attempt did not spend the retry budget: one failure of two.
        let mut c = store.conn().await.unwrap();
        let j = jobs::get(&mut c, id).await.unwrap();
        assert_eq!(
            (j.state.as_str(), j.failures, j.abandoned_in_a_row),
            ("queued", 1, 0),
            "{backend:?}"
        );
        drop(c);
        let again = jobs::claim(&store, "b", &["selftest"], 60_000).await.unwrap().unwrap();
        assert!(jobs::finish(
            &store,
            id,
            "b",
            again.attempts,
            Outcome::Failed {
                error: "boom".into(),
                retry_in_ms: 0
            }
        )
        .await
        .unwrap());
        let mut c = store.conn().await.unwrap();
        let j = jobs::get(&mut c, id).await.unwrap();
        assert_eq!(
            (j.state.as_str(), j.last_error.as_deref(), j.failure_kind.as_deref()),
            ("failed", Some("boom"), Some("error")),
            "{backend:?}"
        );
        let attempts = jobs::attempts(&mut c, id).await.unwrap();
        let outcomes: Vec<(String, Option<String>)> = attempts
            .iter()
            .map(|a| (a.instance.clone(), a.outcome.clone()))
            .collect();
        assert_eq!(
            outcomes,
            vec![
                ("a".into(), Some("abandoned".into())),
                ("b".into(), Some("failed".into())),
                ("b".into(), Some("failed".into()))
            ]
        );
        drop(c);
        cleanup(store, db).await;
    }
}
