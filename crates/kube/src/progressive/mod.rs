//! Progressive delivery without a service mesh: the objects a canary (by
//! replica ratio) or blue-green (by Service switch) rollout applies
//! ([`shape`]), and metric gates judged on Prometheus ([`gate`],
//! [`prometheus`]).

pub mod gate;
pub mod prometheus;
pub mod shape;
