-- The dashboard lists every held environment whatever page of the board it
-- shows (issue 15 item 2): read from the few held slots, not all of them.
CREATE INDEX slots_held ON slots (hold_user) WHERE hold_user IS NOT NULL;
