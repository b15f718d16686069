//! The API tests' harness: the real server in-process on a random port, on a
//! fresh SQLite file or a fresh PostgreSQL database, over real HTTP
//! (`prism_test_support::TestApp`, stopped and its database dropped on
//! `Drop`, panics included).

pub use prism_test_support::app::{ADMIN_PASSWORD, PASSWORD};
pub use prism_test_support::{Backend, TestApp};
