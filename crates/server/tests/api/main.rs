//! The API test suite: the real server over real HTTP, every case on SQLite
//! and on PostgreSQL.

#[allow(dead_code)]
mod harness;

mod bad_input;
mod builds;
mod flow;
mod promotion;
mod rbac;
mod security;
