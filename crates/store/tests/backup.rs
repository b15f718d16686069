//! Backups move between engines: a store filled on SQLite goes to
//! PostgreSQL and back with every record, id, timestamp and secret byte
//! intact, and new records get new ids; a damaged or edited archive, a store
//! in use and a newer schema are refused with nothing written.

use prism_store::backup::{export, import, read_archive};
use prism_store::{apps, credentials, environments, projects, releases, users, Store, StoreError};
use prism_test_support::TestDb;

/// A fresh store of one kind; its database and directory go with it.
struct Fresh {
    store: Store,
    _db: TestDb,
}

impl Fresh {
    async fn on(db: TestDb) -> Self {
        let store = Store::open(&db.url(), 4).await.unwrap();
        Self { store, _db: db }
    }

    async fn sqlite() -> Self {
        Self::on(TestDb::sqlite().await).await
    }

    async fn postgres() -> Self {
        Self::on(TestDb::postgres().await).await
    }

    async fn drop_db(self) {
        self.store.close().await;
    }
}

async fn fill(store: &Store) {
    let mut tx = store.begin().await.unwrap();
    let u = users::create(&mut tx, "dana", "Dana", "$argon2id$fake", true)
        .await
        .unwrap();
    let p = projects::create(&mut tx, "shop", "the shop").await.unwrap();
    let json = serde_json::json!({"stack": "node"});
    let a = apps::create(
        &mut tx,
        apps::NewApplication {
            project_id: p.id,
            name: "web",
            git_url: "https://git.example/shop/web.git",
            build_settings: &json,
            template_settings: &serde_json::json!({}),
        },
    )
    .await
    .unwrap();
    let policy = prism_domain::EnvPolicy::formal();
    environments::create(
        &mut tx,
        environments::NewEnvironment {
            name: "prd",
            position: None,
            cluster_id: None,
            namespace: "shop-prd",
            policy: &policy,
        },
    )
    .await
    .unwrap();
    for i in 0..5 {
        releases::create(&mut tx, a.id, "main", &format!("change {i} ✓"), u.id)
            .await
            .unwrap();
    }
    credentials::create_registry(
        &mut tx,
        "main",
        credentials::RegistryFields {
            host: "registry.example:5000",
            insecure_http: false,
            username: Some("ci"),
            password_enc: Some(vec![0, 1, 2, 254, 255, 10, 13]),
            token_realm_hosts: "auth.example",
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// Everything a person would compare, read through the store's API.
async fn snapshot(store: &Store) -> serde_json::Value {
    let mut c = store.conn().await.unwrap();
    let dana = users::by_name(&mut c, "dana").await.unwrap();
    let app = apps::by_name(&mut c, "web").await.unwrap();
    let rels = releases::list(
        &mut c,
        &releases::ReleaseFilter {
            visible_to: None,
            app_id: Some(app.id),
            project_id: None,
            state: None,
            before: None,
            limit: 100,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let reg = credentials::registry_by_name(&mut c, "main").await.unwrap();
    serde_json::json!({
        "user": [dana.id, dana.username, dana.display_name, dana.is_admin, dana.password_hash],
        "app": [app.id, app.project, app.git_url, app.build_settings],
        "releases": rels.iter().map(|r| serde_json::json!([r.id.to_string(), r.change_note, r.created_at])).collect::<Vec<_>>(),
        "registry": [reg.host, reg.username, reg.password_enc],
    })
}

#[tokio::test]
async fn sqlite_to_postgres_and_back_keeps_everything() {
    let a = Fresh::sqlite().await;
    fill(&a.store).await;
    let before = snapshot(&a.store).await;
    let mut archive = Vec::new();
    let m = export(&a.store, &mut archive).await.unwrap();
    assert_eq!(m.source_engine, "sqlite");
    assert_eq!(m.tables.iter().find(|t| t.name == "releases").unwrap().rows, 5);

    let b = Fresh::postgres().await;
    import(&b.store, archive.as_slice()).await.unwrap();
    assert_eq!(snapshot(&b.store).await, before);
    let mut back = Vec::new();
    export(&b.store, &mut back).await.unwrap();

    let c = Fresh::sqlite().await;
    import(&c.store, back.as_slice()).await.unwrap();
    assert_eq!(snapshot(&c.store).await, before);

    // New records continue after the restored ids on both engines.
    for s in [&b.store, &c.store] {
        let mut tx = s.begin().await.unwrap();
        let app = apps::by_name(&mut tx, "web").await.unwrap();
        let dana = users::by_name(&mut tx, "dana").await.unwrap();
        let r = releases::create(&mut tx, app.id, "main", "after restore", dana.id)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(r.id.seq(), 6, "{:?}", s.backend());
    }
    a.drop_db().await;
    b.drop_db().await;
    c.drop_db().await;
}

#[tokio::test]
async fn damaged_archives_stores_in_use_and_newer_schemas_are_refused() {
    let a = Fresh::sqlite().await;
    fill(&a.store).await;
    let mut archive = Vec::new();
    export(&a.store, &mut archive).await.unwrap();

    // Truncated: refused before anything is written.
    let target = Fresh::sqlite().await;
    let cut = &archive[..archive.len() / 2];
    assert!(read_archive(cut).is_err());
    assert!(import(&target.store, cut).await.is_err());
    let mut c = target.store.conn().await.unwrap();
    assert!(matches!(
        users::by_name(&mut c, "dana").await,
        Err(StoreError::NotFound { .. })
    ));
    drop(c);

    // Edited: one release's note changed inside the archive.
    let (manifest, mut files) = read_archive(archive.as_slice()).unwrap();
    let rel = String::from_utf8(files["releases"].clone())
        .unwrap()
        .replace("change 1", "change X");
    files.insert("releases".into(), rel.into_bytes());
    let edited = repack(&manifest, &files);
    let err = import(&target.store, edited.as_slice()).await.unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");

    // A newer schema than this binary knows.
    let mut newer = manifest.clone();
    newer.schema_version = 99_999_999;
    let err = import(
        &target.store,
        repack(&newer, &read_archive(archive.as_slice()).unwrap().1).as_slice(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");

    // A store in use.
    let err = import(&a.store, archive.as_slice()).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    a.drop_db().await;
    target.drop_db().await;
}

fn repack(manifest: &prism_store::backup::Manifest, files: &std::collections::BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let gz = flate2::write::GzEncoder::new(&mut out, flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        let mut add = |path: &str, data: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o600);
            h.set_cksum();
            tar.append_data(&mut h, path, data).unwrap();
        };
        add("manifest.json", &serde_json::to_vec(manifest).unwrap());
        for (name, data) in files {
            add(&format!("tables/{name}.jsonl"), data);
        }
        tar.into_inner().unwrap().finish().unwrap();
    }
    out
}
