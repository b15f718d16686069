use prism_builder::{WorkspaceError, WorkspaceRoot};

#[test]
fn build_ids_cannot_escape_the_root() {
    let tmp = tempfile::tempdir().unwrap();
    let root = WorkspaceRoot::new(tmp.path().join("ws")).unwrap();
    for bad in [
        "",
        "..",
        ".",
        "../x",
        "a/b",
        "/etc",
        ".hidden",
        "a\0b",
        "a b",
        "ü",
        &"x".repeat(129),
    ] {
        let err = root.create(bad).unwrap_err();
        assert!(matches!(err, WorkspaceError::InvalidBuildId { .. }), "{bad:?}: {err:?}");
    }
    let ws = root.create("build-42_v1.2").unwrap();
    assert_eq!(ws.path(), root.path().join("build-42_v1.2"));
    assert!(ws.path().is_dir());
}

#[test]
fn create_gives_a_fresh_workspace() {
    let tmp = tempfile::tempdir().unwrap();
    let root = WorkspaceRoot::new(tmp.path()).unwrap();
    let ws = root.create("b1").unwrap();
    std::fs::write(ws.path().join("stale"), "x").unwrap();
    let ws = root.create("b1").unwrap();
    assert_eq!(std::fs::read_dir(ws.path()).unwrap().count(), 0);
    root.remove("b1").unwrap();
    assert!(!ws.path().exists());
    root.remove("b1").unwrap();
}

#[test]
fn artifact_paths_stay_inside() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret"), "s").unwrap();
    let root = WorkspaceRoot::new(tmp.path().join("ws")).unwrap();
    let ws = root.create("b1").unwrap();
    let p = ws.path();
    std::fs::create_dir_all(p.join("target/release")).unwrap();
    std::fs::write(p.join("target/release/app.jar"), "jar").unwrap();
    std::os::unix::fs::symlink("target/release/app.jar", p.join("inside-link")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), p.join("abs-link")).unwrap();
    std::os::unix::fs::symlink("../../outside", p.join("dir-link")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", p.join("passwd")).unwrap();
    std::os::unix::fs::symlink("nowhere", p.join("dangling")).unwrap();

    let real = p.canonicalize().unwrap();
    assert_eq!(
        ws.resolve_artifact("target/release/app.jar").unwrap(),
        real.join("target/release/app.jar")
    );
    assert_eq!(
        ws.resolve_artifact("./target/release/app.jar").unwrap(),
        real.join("target/release/app.jar")
    );
    assert_eq!(
        ws.resolve_artifact("inside-link").unwrap(),
        real.join("target/release/app.jar")
    );
    assert_eq!(ws.resolve_artifact("target").unwrap(), real.join("target"));

    for bad in [
        "../outside/secret",
        "target/../../outside/secret",
        "target/..",
        "/etc/passwd",
        "abs-link",
        "dir-link/secret",
        "passwd",
        "",
        ".",
        "a\0b",
    ] {
        let err = ws.resolve_artifact(bad).unwrap_err();
        assert!(matches!(err, WorkspaceError::PathRefused { .. }), "{bad:?}: {err:?}");
    }
    for missing in ["nope.jar", "dangling"] {
        let err = ws.resolve_artifact(missing).unwrap_err();
        assert!(matches!(err, WorkspaceError::NotFound { .. }), "{missing:?}: {err:?}");
    }
}
