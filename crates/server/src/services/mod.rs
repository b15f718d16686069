//! Work that spans several records: release transitions, kubeconfig import.

pub mod deploy_plan;
pub mod kubeconfig;
pub mod transitions;
