-- Per-runner concurrency limits (issue 10 item 6): the Kubernetes runner a
-- build waits for or runs on, and whether it holds one of the runner's
-- slots. A slot is held until the build reaches a final state, so builds of
-- several Prism instances share a runner's limit through the store.
ALTER TABLE builds ADD COLUMN runner TEXT;
ALTER TABLE builds ADD COLUMN runner_slot INTEGER NOT NULL DEFAULT 0;
CREATE INDEX builds_runner ON builds(runner, runner_slot, state);
