//! The peer tools each benchmark drives, checked before it starts: a
//! missing one is named with where to get it, instead of a bare "No such
//! file or directory (os error 2)" and a backtrace from deep inside the run
//! (what `prism-bench image` printed on a fresh machine without buildah).

use std::path::Path;

/// A tool and how to install it.
pub type Peer = (&'static str, &'static str);

pub const BUILDAH: Peer = ("buildah", "apt-get install buildah");
pub const REGISTRY: Peer = ("docker-registry", "apt-get install docker-registry");
pub const SKOPEO: Peer = ("skopeo", "apt-get install skopeo");
pub const UMOCI: Peer = ("umoci", "apt-get install umoci");
pub const RUNC: Peer = ("runc", "apt-get install runc");
pub const SLIRP4NETNS: Peer = ("slirp4netns", "apt-get install slirp4netns");
pub const KUBECTL: Peer = ("kubectl", "bash scripts/k8s/ensure-binaries.sh");
pub const GIT: Peer = ("git", "apt-get install git");
pub const TAR: Peer = ("tar", "apt-get install tar");

/// Whether `binary` is a file in one of `PATH`'s directories.
fn on_path(binary: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| Path::new(&d).join(binary).is_file()))
        .unwrap_or(false)
}

/// Fails naming every missing peer of `bench` and how to get it.
pub fn require(bench: &str, peers: &[Peer]) -> anyhow::Result<()> {
    let missing: Vec<String> = peers
        .iter()
        .filter(|(binary, _)| !on_path(binary))
        .map(|(binary, how)| format!("{binary} ({how})"))
        .collect();
    anyhow::ensure!(
        missing.is_empty(),
        "prism-bench {bench} needs {} on PATH",
        missing.join(", ")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_peer_is_named_with_how_to_get_it() {
        assert!(require("image", &[("sh", "apt-get install dash")]).is_ok());
        let e = require(
            "image",
            &[("sh", "x"), ("no-such-peer-7f3", "apt-get install no-such-peer")],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("prism-bench image needs no-such-peer-7f3 (apt-get install no-such-peer)")
                && !e.contains("sh ("),
            "{e}"
        );
    }
}
