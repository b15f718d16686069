-- A member's or a project's page of deploys is merged from each of their
-- applications' newest deploys (in a state, when one is asked for), so it
-- costs what they may see, not the length of everyone's history (issue 15
-- item 2; the plans are checked by tests/query_plans.rs).
CREATE INDEX deploys_app ON deploys (app_id, id);
CREATE INDEX deploys_app_state ON deploys (app_id, state, id);
