-- Per-account retention of inputs and results, and deletion of one job's
-- data on request. Usage records stay: they are the bill.

alter table accounts
    add column input_retention_days integer,
    add column result_retention_days integer,
    add constraint accounts_input_retention_check check (input_retention_days > 0),
    add constraint accounts_result_retention_check check (result_retention_days > 0);

alter table jobs
    add column data_deleted_at timestamptz,
    -- The result cache entry this job's result was stored under: deleting
    -- the job's data deletes that copy too.
    add column result_key bytea;
create index jobs_finished_idx on jobs (finished_at) where finished_at is not null;
