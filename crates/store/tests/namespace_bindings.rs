//! Per-project namespace bindings (issue 11 item 5) on SQLite and
//! PostgreSQL: a rebind replaces, one namespace goes to one project per
//! environment, an unbind removes only what was there, and removing the
//! environment removes its bindings.

use prism_domain::EnvPolicy;
use prism_store::environments::{self, NewEnvironment};
use prism_store::{projects, Store, StoreError};
use prism_test_support::TestDb;

async fn bindings(db: TestDb) {
    let store = Store::open(&db.url(), 4).await.unwrap();
    let mut c = store.begin().await.unwrap();
    let env = environments::create(
        &mut c,
        NewEnvironment {
            name: "qa",
            position: None,
            cluster_id: None,
            namespace: "{project}-{environment}",
            policy: &EnvPolicy::development(),
        },
    )
    .await
    .unwrap();
    assert_eq!(env.namespace, "{project}-{environment}");
    let shop = projects::create(&mut c, "shop", "").await.unwrap();
    let blog = projects::create(&mut c, "blog", "").await.unwrap();
    assert_eq!(
        environments::bound_namespace(&mut c, env.id, shop.id).await.unwrap(),
        None
    );

    environments::bind_namespace(&mut c, env.id, shop.id, "shop-own")
        .await
        .unwrap();
    c.commit().await.unwrap();
    // The same namespace for another project of the environment: refused
    // (a failed statement ends a PostgreSQL transaction, so its own).
    let mut c = store.begin().await.unwrap();
    let taken = environments::bind_namespace(&mut c, env.id, blog.id, "shop-own").await;
    assert!(
        matches!(taken, Err(StoreError::Duplicate { field: "namespace", .. })),
        "{taken:?}"
    );
    drop(c);

    let mut c = store.begin().await.unwrap();
    // A rebind replaces the project's namespace (and frees the old one).
    environments::bind_namespace(&mut c, env.id, shop.id, "shop-two")
        .await
        .unwrap();
    environments::bind_namespace(&mut c, env.id, blog.id, "shop-own")
        .await
        .unwrap();
    let all = environments::namespace_bindings(&mut c, env.id).await.unwrap();
    let pairs: Vec<(&str, &str)> = all.iter().map(|b| (b.project.as_str(), b.namespace.as_str())).collect();
    assert_eq!(pairs, [("blog", "shop-own"), ("shop", "shop-two")]);
    assert_eq!(all[0].environment, "qa");

    assert!(environments::unbind_namespace(&mut c, env.id, shop.id).await.unwrap());
    assert!(!environments::unbind_namespace(&mut c, env.id, shop.id).await.unwrap());
    assert_eq!(
        environments::bound_namespace(&mut c, env.id, shop.id).await.unwrap(),
        None
    );
    assert_eq!(
        environments::bound_namespace(&mut c, env.id, blog.id)
            .await
            .unwrap()
            .as_deref(),
        Some("shop-own")
    );
    environments::delete(&mut c, env.id).await.unwrap();
    c.commit().await.unwrap();
    let mut c = store.conn().await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM environment_namespaces")
        .fetch_one(&mut *c)
        .await
        .unwrap();
    assert_eq!(left, 0, "the environment's bindings go with it");
    drop(c);
    store.close().await;
}

#[tokio::test]
async fn sqlite_namespace_bindings() {
    bindings(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn postgres_namespace_bindings() {
    bindings(TestDb::postgres().await).await;
}
