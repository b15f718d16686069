//! Work that spans several records: release transitions, kubeconfig import.

pub mod kubeconfig;
pub mod transitions;
