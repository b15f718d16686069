//! Progressive delivery without a service mesh: the strategies
//! ([`strategy`]), the objects a canary (by replica ratio) or blue-green (by
//! Service switch) rollout applies ([`shape`]), its persisted progress
//! ([`progress`]), and metric gates judged on Prometheus ([`gate`],
//! [`prometheus`]).

pub mod gate;
pub mod progress;
pub mod prometheus;
pub mod shape;
pub mod strategy;
