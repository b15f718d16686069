//! Work that spans several records: release transitions, kubeconfig import.

pub mod base_recipe;
pub mod build_config;
pub mod build_log;
pub mod deploy_plan;
pub mod kubeconfig;
pub mod transitions;
