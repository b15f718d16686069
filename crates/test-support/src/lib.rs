//! What Prism's tests share, in one place (so no test binary copies it and
//! no helper needs a dead-code allowance):
//!
//! - [`TestDb`]: a fresh database per test, SQLite by default, PostgreSQL
//!   when `PRISM_TEST_PG_URL` is set or a test asks for it; dropped on
//!   `Drop`, panics included, with its data directory.
//! - [`TestApp`] (feature `app`): the real server in-process on port 0 over
//!   real HTTP, stopped on `Drop`; at its end no job may be left running or
//!   leased.
//! - [`ServerProcess`]: the real `prism serve` binary on a `TestDb`, and
//!   the CLI run against it; stopped with SIGTERM on `Drop`, same job check.
//! - Real peers, each behind a feature: `git` (git daemon, git http-backend),
//!   `jenkins` (a Jenkins double), `registry` (docker-registry, skopeo,
//!   busybox), `browser` (headless Chromium), [`kube`] (a real control plane
//!   with the simulated node), [`node_cluster`] (one with a real kubelet)
//!   and [`ldap`] (a real OpenLDAP server).
//! - [`TempDir`], [`free_port`], [`wait_for`]: the small parts.

pub mod api;
pub mod console_login;
pub mod db;
pub mod dirs;
pub mod ha;
pub mod kube;
pub mod lb;
pub mod ldap;
pub mod metrics;
pub mod node_cluster;
pub mod oidc;
pub mod process;

#[cfg(feature = "browser")]
pub mod browser;
#[cfg(feature = "git")]
pub mod git;
#[cfg(feature = "jenkins")]
pub mod jenkins;
#[cfg(feature = "registry")]
pub mod registry;
#[cfg(feature = "registry")]
pub mod toolchain;

#[cfg(feature = "app")]
pub mod app;

#[cfg(feature = "app")]
pub use app::TestApp;
pub use db::{Backend, TestDb};
pub use dirs::{free_port, wait_for, wait_for_every, TempDir};
pub use process::ServerProcess;
