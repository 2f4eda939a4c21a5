-- Accounts, API keys, jobs, their inputs and usage records.

create function set_updated_at() returns trigger
language plpgsql as $$
begin
    new.updated_at := now();
    return new;
end;
$$;

create table accounts (
    id          uuid primary key,
    name        text not null,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    constraint accounts_name_length check (char_length(name) between 1 and 200)
);
create trigger accounts_updated_at before update on accounts
    for each row execute function set_updated_at();

create table api_keys (
    id            uuid primary key,
    account_id    uuid not null references accounts (id) on delete cascade,
    -- Public part of the key, used to find the row; never secret.
    public_id     text not null,
    -- HMAC-SHA256 of the whole key under the server's pepper.
    key_hash      bytea not null,
    name          text not null default '',
    created_at    timestamptz not null default now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz,
    constraint api_keys_public_id_key unique (public_id),
    constraint api_keys_hash_length check (octet_length(key_hash) = 32)
);
create index api_keys_account_idx on api_keys (account_id);

create table jobs (
    id           uuid primary key,            -- uuid v7: time-ordered
    account_id   uuid not null references accounts (id) on delete cascade,
    kind         text not null,
    status       text not null default 'queued',
    params       jsonb not null default '{}',
    result       jsonb,
    error        jsonb,
    attempts     integer not null default 0,
    created_at   timestamptz not null default now(),
    updated_at   timestamptz not null default now(),
    started_at   timestamptz,
    finished_at  timestamptz,
    constraint jobs_kind_check check (kind in ('transcribe', 'translate')),
    constraint jobs_status_check
        check (status in ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    constraint jobs_attempts_check check (attempts >= 0)
);
create index jobs_account_created_idx on jobs (account_id, created_at desc);
create trigger jobs_updated_at before update on jobs
    for each row execute function set_updated_at();

create table job_inputs (
    job_id            uuid primary key references jobs (id) on delete cascade,
    content_type      text not null,
    codec             text not null,
    sample_rate       integer not null,
    channels          integer not null,
    duration_seconds  double precision not null,
    size_bytes        bigint not null,
    data              bytea not null
);

create table usage_records (
    id           bigint generated always as identity primary key,
    job_id       uuid not null references jobs (id) on delete cascade,
    account_id   uuid not null references accounts (id) on delete cascade,
    metric       text not null,
    quantity     double precision not null,
    recorded_at  timestamptz not null default now(),
    -- A redelivered job must never bill twice.
    constraint usage_records_job_metric_key unique (job_id, metric),
    constraint usage_records_quantity_check check (quantity >= 0)
);
create index usage_records_account_time_idx on usage_records (account_id, recorded_at);
