//! Prism's server: the REST API under `/api/v1`, authentication and roles,
//! the OpenAPI document, metrics, and the durable job runner.

pub mod admin;
pub mod app;
pub mod auth;
pub mod bootstrap;
pub mod clock;
pub mod config;
pub mod error;
pub mod idempotency;
pub mod jobs;
pub mod json;
pub mod key_backup;
pub mod keys;
pub mod live_events;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod render_sandbox;
pub mod routes;
pub mod secrets;
pub mod services;
pub mod state;
pub mod web;
pub mod wire;

pub use app::{launch, serve};
pub use config::{ServeArgs, Settings};
