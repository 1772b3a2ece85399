-- durable SQLite schema: priorities and fairness keys.
--
-- An execution's priority (higher first) and fairness key ('' for none) are kept on its row
-- (client.start, ctx.start_child; a next run keeps them) and copied onto each task it gets:
-- workflow tasks take them from the executions row when they are written, action tasks from
-- the commit that schedules them (a call may give its own priority). Claims take due tasks by
-- priority, then round-robin across (tenant, fairness_key), then by due time.

ALTER TABLE executions ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN fairness_key TEXT NOT NULL DEFAULT '';
ALTER TABLE workflow_tasks ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE workflow_tasks ADD COLUMN fairness_key TEXT NOT NULL DEFAULT '';
ALTER TABLE action_tasks ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE action_tasks ADD COLUMN fairness_key TEXT NOT NULL DEFAULT '';
