-- The console's action is spelled as the API spells it: `fulfill`. Audit entries written with
-- the old spelling are renamed, so the log says one thing for one action.
UPDATE audit_log SET action = 'order.fulfill' WHERE action = 'order.fulfil';
