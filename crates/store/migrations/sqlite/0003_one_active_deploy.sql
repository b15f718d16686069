-- At most one deploy in progress per application x environment: a second
-- deploy or a rollback cannot race the first.
CREATE UNIQUE INDEX deploys_one_active ON deploys(app_id, env_id)
    WHERE state IN ('planning', 'awaiting_review', 'applying', 'watching');
