-- Lists whose cost follows what they show, not how many releases and
-- deploys there are (issue 15 item 2).
-- The dashboard's deploys awaiting review, read from the few in that state.
CREATE INDEX deploys_state ON deploys (state, id);
-- A page of releases in one state is merged from each visible
-- application's newest releases in that state...
CREATE INDEX releases_app_state ON releases (app_id, state, id);
-- ...or, for an admin, read newest first from the state's own range.
DROP INDEX releases_state;
CREATE INDEX releases_state_id ON releases (state, id);
