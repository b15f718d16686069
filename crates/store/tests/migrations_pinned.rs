//! Migrations are append-only (issue 18 item 5): a released migration is
//! never edited, renamed or removed, since databases out there recorded its
//! checksum when they ran it (sqlx refuses to start on a changed one). This
//! pins the SHA-384 of every migration file; a new migration is added by
//! appending its line here, in the same change that adds the file.

use std::path::Path;

use sha2::{Digest, Sha384};

const PINNED: &[(&str, &str)] = &[
    (
        "sqlite/0001_core.sql",
        "30f41f2fd724afdba911c14361bf0104473217be838089e82efdad6ddf3aae54c43d7dd7a4ed2e59ed9bc7de4b756155",
    ),
    (
        "sqlite/0002_deploys.sql",
        "f0456a8bf10a8fd12fb658e469ccd2b5961f5aa688ac04d52f4aaf4bece517bef26b1ffd513efcd451dbe376c3ace440",
    ),
    (
        "sqlite/0003_one_active_deploy.sql",
        "4ec41737fac78b4ced71c2b28bcc6f15c6450b33a0acab4516051ef6792ceed1388508e4c6fd590c0bf6370440f359b9",
    ),
    (
        "sqlite/0004_builds.sql",
        "1ec9c77b1e051dbb6531ba5958240b3bca0cc023216147d083b35261e613e4aa8a474f8ad6db05c494df5a99badbc403",
    ),
    (
        "sqlite/0008_deploy_failure_kind.sql",
        "ebbfccad493b1fb6def117919b9944b32acecb903eb2cc23e0c34a8673877ad1f4c1461251ef941c9e3a59d1ee85ca6a",
    ),
    (
        "sqlite/0017_job_crashes.sql",
        "9acc2fab95ac7c84221a76f6282984d319577a990d1f74b83734b37e6dcad27fc4496525f9bca239dbe786251c5666d4",
    ),
    (
        "postgres/0001_core.sql",
        "82dadfa9d937ab56dc7f517a7393c016d40d38c0beda41fa3b9628c8654fd394e68c4e6ef7b28a51740e2568d2ef8cca",
    ),
    (
        "postgres/0002_deploys.sql",
        "b8da1dc37adb7c44cbf78c9d69a2c1cb0c05e7413109407e227d70f052155a8fac1523b39031dedea05fe57572577dc2",
    ),
    (
        "postgres/0003_one_active_deploy.sql",
        "4ec41737fac78b4ced71c2b28bcc6f15c6450b33a0acab4516051ef6792ceed1388508e4c6fd590c0bf6370440f359b9",
    ),
    (
        "postgres/0004_builds.sql",
        "5b06b0712b6dfa6c914d43f64d1df08f21e5ad548bbe48da4c68e6e54899b5073fb91baaa85d07f31c809ce4091ff2d3",
    ),
    (
        "postgres/0008_deploy_failure_kind.sql",
        "ebbfccad493b1fb6def117919b9944b32acecb903eb2cc23e0c34a8673877ad1f4c1461251ef941c9e3a59d1ee85ca6a",
    ),
    (
        "postgres/0017_job_crashes.sql",
        "7c43b8878c2c248ea59504312114545cbc0cc52a8ac2211859975f8081878247a5f0926317fea4d0ae3673bf44cdb853",
    ),
];

#[test]
fn every_released_migration_is_unchanged_and_every_migration_is_pinned() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for (file, pinned) in PINNED {
        let bytes = std::fs::read(root.join(file))
            .unwrap_or_else(|e| panic!("released migration {file} is gone ({e}): migrations are append-only"));
        let actual = hex::encode(Sha384::digest(&bytes));
        assert_eq!(
            &actual, pinned,
            "released migration {file} was edited: add a new migration instead"
        );
    }
    for engine in ["sqlite", "postgres"] {
        for entry in std::fs::read_dir(root.join(engine)).unwrap() {
            let name = format!("{engine}/{}", entry.unwrap().file_name().to_string_lossy());
            assert!(
                PINNED.iter().any(|(f, _)| *f == name),
                "{name} is not pinned: append its checksum to PINNED in {}",
                file!()
            );
        }
    }
}

#[test]
fn both_engines_have_the_same_migration_versions() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let versions = |engine: &str| {
        let mut v: Vec<String> = std::fs::read_dir(root.join(engine))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy()[..4].to_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(versions("sqlite"), versions("postgres"));
}
