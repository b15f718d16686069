//! How a release reaches an environment (rolling, canary or blue-green): the
//! settings are prism-domain's, shared with the REST API's types.

pub use prism_domain::rollout_strategy::{CanaryStep, Strategy};
