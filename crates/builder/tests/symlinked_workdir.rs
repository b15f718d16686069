//! Issue 11 item 3: a checkout that plants `data -> ../../..` and names
//! `data` as its working directory must not get a build command run in the
//! server's own directory. Before the fix the command ran there and could
//! read (and change) Prism's key and database.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use prism_builder::{BuildStep, CancellationToken, ExecError, Executor, LocalExecutor, MemoryLogSink};

#[tokio::test]
async fn a_symlinked_working_directory_is_refused_before_the_command_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let server_dir = tmp.path().canonicalize().unwrap();
    std::fs::write(server_dir.join("secret.key"), "k").unwrap();
    let src = server_dir.join("builds/b1/src");
    std::fs::create_dir_all(&src).unwrap();
    std::os::unix::fs::symlink("../../..", src.join("data")).unwrap();
    for workdir in [src.join("data"), src.join("../src")] {
        let step = BuildStep {
            name: "build".into(),
            command: "cp secret.key stolen".into(),
            workdir: workdir.clone(),
            env: BTreeMap::new(),
            timeout: Duration::from_secs(10),
        };
        let exec = LocalExecutor::new();
        let err = exec
            .run(step, Arc::new(MemoryLogSink::new()), CancellationToken::new())
            .await
            .unwrap_err();
        assert!(matches!(err, ExecError::WorkdirRefused(..)), "{workdir:?}: {err:?}");
        assert!(err.to_string().contains("symlink"), "{err}");
        assert!(!server_dir.join("stolen").exists(), "the command never ran");
    }
}
