-- Webhooks (Standard Webhooks): endpoints per account with event filters,
-- one event row per job state change, one delivery per event and
-- destination, and a log row per attempt. Events are written by a trigger
-- in the same transaction as the status change, so none can be lost
-- whichever process changed the job.

-- Signs the deliveries to per-job `webhook_url`s; `whsec_` + base64.
alter table accounts add column webhook_secret text;

create table webhook_endpoints (
    id                    uuid primary key,
    account_id            uuid not null references accounts (id) on delete cascade,
    url                   text not null,
    -- Empty: every event type.
    event_types           text[] not null default '{}',
    secret                text not null,
    -- Still signed with during a rotation, until it expires.
    previous_secret       text,
    previous_secret_until timestamptz,
    created_at            timestamptz not null default now(),
    updated_at            timestamptz not null default now(),
    -- Set when deliveries start failing, cleared by a success.
    failing_since         timestamptz,
    disabled_at           timestamptz,
    disabled_reason       text,
    constraint webhook_endpoints_url_length check (char_length(url) between 8 and 2000)
);
create index webhook_endpoints_account_idx on webhook_endpoints (account_id);
create trigger webhook_endpoints_updated_at before update on webhook_endpoints
    for each row execute function set_updated_at();

create table webhook_events (
    -- `msg_…`: the webhook-id of every delivery and retry of this event.
    id          text primary key,
    account_id  uuid not null references accounts (id) on delete cascade,
    job_id      uuid references jobs (id) on delete set null,
    event_type  text not null,
    payload     jsonb not null,
    created_at  timestamptz not null default now()
);
create index webhook_events_job_idx on webhook_events (job_id);

create table webhook_deliveries (
    id               bigint generated always as identity primary key,
    event_id         text not null references webhook_events (id) on delete cascade,
    account_id       uuid not null references accounts (id) on delete cascade,
    -- An endpoint's delivery, or (null) the job's own webhook_url.
    endpoint_id      uuid references webhook_endpoints (id) on delete cascade,
    url              text not null,
    status           text not null default 'pending',
    attempts         integer not null default 0,
    next_attempt_at  timestamptz not null default now(),
    -- A dispatcher holds the delivery until then; if it dies mid-send,
    -- another takes it over.
    locked_until     timestamptz,
    created_at       timestamptz not null default now(),
    delivered_at     timestamptz,
    constraint webhook_deliveries_status_check
        check (status in ('pending', 'delivered', 'failed', 'cancelled'))
);
create index webhook_deliveries_due_idx on webhook_deliveries (next_attempt_at)
    where status = 'pending';
create index webhook_deliveries_event_idx on webhook_deliveries (event_id);
create index webhook_deliveries_endpoint_idx on webhook_deliveries (endpoint_id, created_at desc);

create table webhook_attempts (
    id             bigint generated always as identity primary key,
    delivery_id    bigint not null references webhook_deliveries (id) on delete cascade,
    attempted_at   timestamptz not null default now(),
    status_code    integer,
    latency_ms     integer not null,
    error          text,
    response_excerpt text
);
create index webhook_attempts_delivery_idx on webhook_attempts (delivery_id, attempted_at);

-- One event for a job, with a delivery to every enabled endpoint of its
-- account that takes the type, and to the job's own webhook_url.
create function enqueue_job_webhook(
    p_job_id uuid, p_account_id uuid, p_type text, p_webhook_url text, p_data jsonb
) returns void language plpgsql as $$
declare
    event_id text := 'msg_' || replace(gen_random_uuid()::text, '-', '');
    has_destination boolean;
begin
    select p_webhook_url is not null or exists (
        select 1 from webhook_endpoints e
        where e.account_id = p_account_id and e.disabled_at is null
          and (cardinality(e.event_types) = 0 or p_type = any (e.event_types))
    ) into has_destination;
    if not has_destination then
        return;
    end if;
    insert into webhook_events (id, account_id, job_id, event_type, payload)
    values (event_id, p_account_id, p_job_id, p_type, jsonb_build_object(
        'type', p_type,
        'timestamp', to_char(now() at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'data', p_data));
    insert into webhook_deliveries (event_id, account_id, endpoint_id, url)
    select event_id, p_account_id, e.id, e.url from webhook_endpoints e
    where e.account_id = p_account_id and e.disabled_at is null
      and (cardinality(e.event_types) = 0 or p_type = any (e.event_types));
    if p_webhook_url is not null then
        insert into webhook_deliveries (event_id, account_id, endpoint_id, url)
        values (event_id, p_account_id, null, p_webhook_url);
    end if;
    perform pg_notify('voxq_webhooks', '');
end;
$$;

create function jobs_webhook_events() returns trigger language plpgsql as $$
declare
    event_type text;
begin
    event_type := case new.status
        when 'running' then 'job.started'
        when 'succeeded' then 'job.succeeded'
        when 'failed' then 'job.failed'
        when 'cancelled' then 'job.cancelled'
    end;
    -- A job claimed again after a crash has started already.
    if event_type is null or (event_type = 'job.started' and old.started_at is not null) then
        return new;
    end if;
    perform enqueue_job_webhook(new.id, new.account_id, event_type, new.params ->> 'webhook_url',
        jsonb_build_object('id', new.id, 'status', new.status,
                           'url', '/v1/jobs/' || new.id,
                           'error', new.error -> 'code'));
    return new;
end;
$$;

create trigger jobs_webhook_events after update of status on jobs
    for each row when (old.status is distinct from new.status)
    execute function jobs_webhook_events();
