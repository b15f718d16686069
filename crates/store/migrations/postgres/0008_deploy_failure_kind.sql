-- Why a deploy failed, as a kind (render, apply, rollout, unreachable,
-- interrupted, crashed, internal) beside its message.
ALTER TABLE deploys ADD COLUMN failure_kind TEXT;
