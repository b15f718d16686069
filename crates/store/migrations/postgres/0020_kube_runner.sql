-- Kubernetes build runners (executor kind `kubernetes`): the runner's cluster,
-- namespace and pod defaults as JSON (see prism_kube::build_job::RunnerSettings);
-- '{}' for Jenkins executors.
ALTER TABLE executors ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
