-- The transactional outbox: a job's message commits with the job, and a
-- relay publishes whatever the submit path could not (broker down, API
-- killed between commit and publish). A published row is deleted.

create table outbox (
    id               bigint generated always as identity primary key,
    job_id           uuid not null references jobs (id) on delete cascade,
    -- Whose queues the relay declares before publishing.
    model            text not null,
    routing_key      text not null,
    payload          bytea not null,
    created_at       timestamptz not null default now(),
    attempts         integer not null default 0,
    next_attempt_at  timestamptz not null default now(),
    last_error       text,
    -- Job parameters only, never audio.
    constraint outbox_payload_size check (octet_length(payload) <= 8192)
);
create index outbox_due_idx on outbox (next_attempt_at, id);
create index outbox_job_idx on outbox (job_id);
