//! A test that panics leaves neither its PostgreSQL database nor its data
//! directory behind (needs PostgreSQL, like the store story and the API tests).

use std::sync::mpsc;

use prism_test_support::db::{block_on, pg_base_url, pg_database_exists};
use prism_test_support::{Backend, TestDb};

#[test]
fn a_panicking_test_leaves_no_database_and_no_directory() {
    let (tx, rx) = mpsc::channel();
    let test = std::thread::spawn(move || {
        let db = TestDb::start_blocking(Backend::Postgres);
        std::fs::write(db.dir().join("some-file"), "x").unwrap();
        tx.send((db.pg_name().unwrap().to_owned(), db.dir().to_path_buf()))
            .unwrap();
        panic!("a test failing on purpose while it holds a TestDb");
    });
    assert!(test.join().is_err(), "the test thread panicked");
    let (name, dir) = rx.recv().unwrap();
    assert!(!dir.exists(), "{} left behind", dir.display());
    let exists = block_on(async move { pg_database_exists(&pg_base_url(), &name).await.map(|e| (name, e)) });
    let (name, exists) = exists.unwrap();
    assert!(!exists, "database {name} left behind");
}
