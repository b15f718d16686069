//! Builder image fixtures made from the host's own toolchain, offline: the
//! Node.js binary, the shared libraries it loads (as `ldd` lists them), npm
//! (`/usr/lib/node_modules/npm`) and the host's CA bundle and npm config, laid
//! out as a root filesystem tree. Put on a busybox base (which gives `sh` and
//! `env`), it is a builder image that runs `npm install` inside a build
//! container, and a runtime that runs `node index.js`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn which(tool: &str) -> PathBuf {
    let out = Command::new("which").arg(tool).output().unwrap();
    assert!(out.status.success(), "{tool} must be installed");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn copy(src: &Path, dest: &Path, rel: &str) {
    let to = dest.join(rel.trim_start_matches('/'));
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(src, &to).unwrap_or_else(|e| panic!("copying {}: {e}", src.display()));
}

fn copy_tree(src: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(src).unwrap().flatten() {
        let ft = e.file_type().unwrap();
        let target = to.join(e.file_name());
        if ft.is_symlink() {
            let link = std::fs::read_link(e.path()).unwrap();
            let _ = std::fs::remove_file(&target);
            std::os::unix::fs::symlink(link, &target).unwrap();
        } else if ft.is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// The Node.js binary and its shared libraries under `dest` (a runtime).
pub fn node_runtime(dest: &Path) {
    let node = std::fs::canonicalize(which("node")).unwrap();
    copy(&node, dest, "usr/bin/node");
    let ldd = Command::new("ldd").arg(&node).output().unwrap();
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            copy(Path::new(p), dest, p);
        }
    }
}

/// Node.js and npm under `dest`: a builder image layer for the `node` stack.
pub fn node_toolchain(dest: &Path) {
    node_runtime(dest);
    let npm = Path::new("/usr/lib/node_modules/npm");
    assert!(
        npm.join("bin/npm-cli.js").exists(),
        "npm must be installed in /usr/lib/node_modules/npm"
    );
    copy_tree(npm, &dest.join("usr/lib/node_modules/npm"));
    let bin = dest.join("usr/bin");
    let _ = std::fs::remove_file(bin.join("npm"));
    std::os::unix::fs::symlink("../lib/node_modules/npm/bin/npm-cli.js", bin.join("npm")).unwrap();
    // npm-cli.js starts with `#!/usr/bin/env node`: busybox's env.
    let _ = std::fs::remove_file(bin.join("env"));
    std::os::unix::fs::symlink("../../bin/busybox", bin.join("env")).unwrap();
    // The host's trust store and npm config: npm behind this machine's egress
    // (its CA) works the same inside the container as on the host.
    for f in ["/etc/ssl/certs/ca-certificates.crt", "/usr/etc/npmrc", "/etc/npmrc"] {
        if Path::new(f).exists() {
            copy(Path::new(f), dest, f);
        }
    }
}
