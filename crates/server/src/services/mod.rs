//! Helpers the use cases (`ops`) and the jobs share: what a build runs with,
//! deploy planning against a cluster, base image recipes, the build log
//! writer, kubeconfig import, the notices announced to subscribers. They know nothing of HTTP; where they refuse an
//! input they say so with an [`OpError`](crate::ops::OpError).

pub mod address_policy;
pub mod app_secrets;
pub mod base_recipe;
pub mod build_config;
pub mod build_log;
pub mod deploy_plan;
pub mod isolation;
pub mod kubeconfig;
pub mod notices;
pub mod rollout_shape;
