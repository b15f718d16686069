//! The API test suite: the real server over real HTTP, every case on SQLite
//! and on PostgreSQL.

mod harness;

use prism_test_support::both_backends;

mod bad_input;
mod board_paging;
mod builds;
mod console_resend;
mod deploy_lists;
mod flow;
mod governance;
mod idempotency;
mod notifications;
mod preview_world;
mod project_webhooks;
mod promotion;
mod rbac;
mod reads_during_writes;
mod rollouts;
mod secrets;
mod security;
mod stream_resume;
mod webhooks;
