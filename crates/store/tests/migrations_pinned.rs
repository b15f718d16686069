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
        "sqlite/0018_build_builder_image.sql",
        "043a7d5c86f3a34c7cda6d8e949c3a16971c052e5ff6dc60913486e0e749df75b9e2db61cb6d7ad52e4d39d722f164b5",
    ),
    (
        "sqlite/0020_kube_runner.sql",
        "0dc1e5c8b6ec219346e8c56e62bdc742f1a452e71761f4b840f472f6b3881498bbed81172d2ab61785ff9144bd279214",
    ),
    (
        "sqlite/0022_credential_scopes.sql",
        "6621c5eff51bc9abf2e180bba0f0c3c412065d59eadcd610a5eb5c403e3cfa450d2cd2593c503401c218604905324965",
    ),
    (
        "sqlite/0023_address_policy.sql",
        "4d51bd512b7a8d5be8a16cc7a7113f0332603ecac57c0d22d0d4a82dba6279d19ed8fc8b2c6c3df7246333ae48e1ce72",
    ),
    (
        "sqlite/0024_governance.sql",
        "56ffbcc6c67943e68977db40c608a6e83ceff37fa21aed9c44ca2bea05ba9512544009947693dc7e2a734dc682b86573",
    ),
    (
        "sqlite/0027_environment_namespaces.sql",
        "ddc2f2420a66597dcfe7e0324c8c578da21828caeffaeb7f4f609b6c893ac03c26ed928e564ec8af6c9abedc8a00cfe5",
    ),
    (
        "sqlite/0031_notifications.sql",
        "cb644c9a0c0da2c0eea8e7ab5912421b4845cfe2a81d4b563fc9102b3b5fb72d04f51b66924abdf10c72817fcaac1470",
    ),
    (
        "sqlite/0032_app_secrets.sql",
        "351981a173488c55d5caa2565deec55bc2fb0e9022f59c237962d2c26a2c3f805b0302c43f816f71ce8a6d1a78fba955",
    ),
    (
        "sqlite/0033_runner_slots.sql",
        "4cd5710d7a33f7516f9dd758afc0d46157a8ca18a9298162fb65f2885b1967c6b86cf16438eafe638babc44a7800dbe8",
    ),
    (
        "sqlite/0034_directory_login.sql",
        "2641693093aec39520ea3dde7dd801e6580d16855911788f570135926cdf658d95fcd2d3ce2c2fba4bf53a6600bd9708",
    ),
    (
        "sqlite/0035_project_webhooks.sql",
        "a9d8a11cb524ae8f7d3a4b142414c4557d1152027d090e335dc7307b7abc4b83d4ea24a0155125638a2b2fdccd7b417e",
    ),
    (
        "sqlite/0036_ops_tools.sql",
        "8d02e54124ff02417438af4e6a3e2fc3fa1283278b72651ef7bb78d4ea87a7ce9aa493d86cc18a9c8fb84e11933c1bc1",
    ),
    (
        "sqlite/0037_cli_logins.sql",
        "9537d070e2d21f6ce3339245291ddbbe34af9b675283d8f5f94cce6af71e76eb3c4233641fc084ced63eb08b1cbe38f3",
    ),
    (
        "sqlite/0038_external_ids.sql",
        "8d6f15483c63032e73fb3e2e61bd8e39e0913f050c6518611d62aafde7a5d18a6ed4cc2a7856485761e9f05f82e8b7b2",
    ),
    (
        "sqlite/0039_progressive.sql",
        "0aeb156a180fbae2c380bfc24bee81ffe8215d27ca150cb05cb9374020c9c1362db3ffba38aafa8a21dc64346537290c",
    ),
    (
        "sqlite/0040_idempotency_keys.sql",
        "af87dad187d72e112ffb967eba3a148c595aac2ed940976cdbca845a8dcadd4e67b5a41166b952dc942c13757cc8ee7d",
    ),
    (
        "sqlite/0041_held_slots.sql",
        "c91400105b0239cd52394482f960e1be3d3a8d38a78a634ddc2ee584d254be9b0262cd4d688ec4a8af405a4af71a33ce",
    ),
    (
        "sqlite/0042_list_indexes.sql",
        "89d8e9a848ef2a387ec1c5e6926c44820d03cc8c1c89ac43cba04ec25834e9e0d33d57988abc0a168262aa1c252d19fe",
    ),
    (
        "sqlite/0043_history_per_application.sql",
        "2d9b32ef51bf68892146359f6c5d7734bdcf28ca670bdb1ec3d80ba4134321d27491f71adff59309e36f3f41956f4528",
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
    (
        "postgres/0018_build_builder_image.sql",
        "043a7d5c86f3a34c7cda6d8e949c3a16971c052e5ff6dc60913486e0e749df75b9e2db61cb6d7ad52e4d39d722f164b5",
    ),
    (
        "postgres/0020_kube_runner.sql",
        "0dc1e5c8b6ec219346e8c56e62bdc742f1a452e71761f4b840f472f6b3881498bbed81172d2ab61785ff9144bd279214",
    ),
    (
        "postgres/0022_credential_scopes.sql",
        "008feb7dbcd789befdc91c22087abe60e3f2bca018b1fa49cd7eb3d20b91b6d8d2c82e2f140485084b55a169d4975774",
    ),
    (
        "postgres/0023_address_policy.sql",
        "2436803083547f039347163e94881ada90c70c739a146ecac536b64eca0914b8043b31fa959526188f1c7ca6aa420308",
    ),
    (
        "postgres/0024_governance.sql",
        "3458c0eec452a5bab962f714e8c3a14f93b4cc29016d7bce3a7513dbced2e13cec97b0e8cdb9d6109f20ff5070ab5f4d",
    ),
    (
        "postgres/0027_environment_namespaces.sql",
        "4aa3ea0f48d54301668598adcca998eb6c87baff61043c07d6e28f285284c4785ae07072ca34a047c0199788da507f13",
    ),
    (
        "sqlite/0030_git_webhooks.sql",
        "9dc4903414272d61600cea0dd2862ddd68c30a027d44a9fe9712fe6704f9f78f5b640706bac58136db483761e5cda5bc",
    ),
    (
        "postgres/0030_git_webhooks.sql",
        "e7d766012a30b3bf0cafdba70da9dad0432a0b8e8807e4c1b7cab126fc990b7ac62723ec667ef8197bde204ea3d45910",
    ),
    (
        "postgres/0031_notifications.sql",
        "86ef1fbe833f4415f78ecdf606000279753d89b6baa949ee9bdd526a988bd81f4375458f48b89cae3174edcd12a74a57",
    ),
    (
        "postgres/0032_app_secrets.sql",
        "b560737069d0bfaa987565967dc2117ef7e93d15fbe615d9d1c188bdc4fc2376ac908fcb12589c23368375808b1855a3",
    ),
    (
        "postgres/0033_runner_slots.sql",
        "1e54c5c0b26f131b3765d83aa071f38dc4ab19f39d00b0916ba822686a40e84ffdba85cc8ff4beaf9f4e4fb44c1234a6",
    ),
    (
        "postgres/0034_directory_login.sql",
        "c9b8019980af5249ca095f50d0e9f693920a2690659833b2c3016b883ca4316185a29f335ef582d2e5c45dc9bd737040",
    ),
    (
        "postgres/0035_project_webhooks.sql",
        "345e45b5bd5ea313c8f138774133a5868f2437a615ee71e7ae6bf3ca3db80399daf3c8df94dc6a40c6a619e89c884c71",
    ),
    (
        "postgres/0036_ops_tools.sql",
        "3d1d04eb6839ddfdaafbf77e5d3ea25a4e46782062f7dffd8564d9b47504a85d9723526e92019f91cb72e1618b0a2dec",
    ),
    (
        "postgres/0037_cli_logins.sql",
        "9549a90b49b3ce2f96974f6f630976c5f41842fc84a2644e6dc8382866f8a93f506a78a81427c1632f62e2b8ad554806",
    ),
    (
        "postgres/0038_external_ids.sql",
        "8d6f15483c63032e73fb3e2e61bd8e39e0913f050c6518611d62aafde7a5d18a6ed4cc2a7856485761e9f05f82e8b7b2",
    ),
    (
        "postgres/0039_progressive.sql",
        "9e140db658c19224d739269ad90ce4307bc702e5f8de208042049133a9f587279c05020303b1d3b291149d0fcce2cc2f",
    ),
    (
        "postgres/0040_idempotency_keys.sql",
        "9f2f78e0fe9000449b372cfc096449a2b3d55866b221f87873ecf272a1e68e9afea3778ad0d8a11481f2c238127cedd4",
    ),
    (
        "postgres/0041_held_slots.sql",
        "c91400105b0239cd52394482f960e1be3d3a8d38a78a634ddc2ee584d254be9b0262cd4d688ec4a8af405a4af71a33ce",
    ),
    (
        "postgres/0042_list_indexes.sql",
        "89d8e9a848ef2a387ec1c5e6926c44820d03cc8c1c89ac43cba04ec25834e9e0d33d57988abc0a168262aa1c252d19fe",
    ),
    (
        "postgres/0043_history_per_application.sql",
        "2d9b32ef51bf68892146359f6c5d7734bdcf28ca670bdb1ec3d80ba4134321d27491f71adff59309e36f3f41956f4528",
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
