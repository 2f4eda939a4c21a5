-- Tiers, users, sessions, scoped keys, quota reservations and the audit log.

alter table accounts
    add column tier text not null default 'free',
    -- Per-account limits set by an admin; keys absent here fall back to
    -- the tier's limits from configuration.
    add column limits_override jsonb not null default '{}',
    add column suspended_at timestamptz,
    add constraint accounts_tier_check check (tier in ('free', 'basic', 'pro', 'enterprise')),
    add constraint accounts_limits_override_object check (jsonb_typeof(limits_override) = 'object');

create table users (
    id             uuid primary key,
    account_id     uuid not null references accounts (id) on delete cascade,
    email          text not null,
    password_hash  text not null,
    role           text not null default 'member',
    created_at     timestamptz not null default now(),
    updated_at     timestamptz not null default now(),
    constraint users_role_check check (role in ('member', 'admin')),
    constraint users_email_length check (char_length(email) between 3 and 254)
);
-- Emails are compared case-insensitively; one user per address.
create unique index users_email_key on users (lower(email));
create index users_account_idx on users (account_id);
create trigger users_updated_at before update on users
    for each row execute function set_updated_at();

-- One family per login; every refresh rotates the token inside it. Reusing a
-- rotated token revokes the whole family (RFC 6819 / OAuth 2.0 BCP).
create table token_families (
    id            uuid primary key,
    user_id       uuid not null references users (id) on delete cascade,
    created_at    timestamptz not null default now(),
    revoked_at    timestamptz,
    revoke_reason text
);
create index token_families_user_idx on token_families (user_id);

create table refresh_tokens (
    id          uuid primary key,
    family_id   uuid not null references token_families (id) on delete cascade,
    -- SHA-256 of a 256-bit random token: a fast hash is enough at that entropy.
    token_hash  bytea not null,
    created_at  timestamptz not null default now(),
    expires_at  timestamptz not null,
    rotated_at  timestamptz,
    constraint refresh_tokens_hash_key unique (token_hash),
    constraint refresh_tokens_hash_length check (octet_length(token_hash) = 32)
);
create index refresh_tokens_family_idx on refresh_tokens (family_id);

alter table api_keys
    add column scopes text[] not null default array['jobs:write', 'jobs:read', 'usage:read'],
    add column created_by_user uuid references users (id) on delete set null,
    -- Set by a rotation with a grace period: the key works until then.
    add column expires_at timestamptz,
    add column rotated_to uuid references api_keys (id) on delete set null,
    add constraint api_keys_name_length check (char_length(name) <= 200);

-- A job's quota charge lives with the job, so Redis counters can always be
-- rebuilt from Postgres: reserved amounts of unfinished jobs plus usage.
alter table jobs
    add column quota_day date not null default (now() at time zone 'utc')::date,
    add column reserved jsonb not null default '{}';
create index jobs_account_unfinished_idx on jobs (account_id, quota_day)
    where status in ('queued', 'running');

-- Text jobs keep their input here too; audio columns apply to audio only.
alter table job_inputs
    alter column codec drop not null,
    alter column sample_rate drop not null,
    alter column channels drop not null,
    alter column duration_seconds drop not null,
    alter column data drop not null,
    add column text text,
    add constraint job_inputs_one_kind check ((data is null) <> (text is null));

-- Usage counts against the day its job was submitted (the day it reserved).
alter table usage_records
    add column usage_day date not null default (now() at time zone 'utc')::date;
create index usage_records_account_day_idx on usage_records (account_id, usage_day);

create table audit_log (
    id          bigint generated always as identity primary key,
    occurred_at timestamptz not null default now(),
    account_id  uuid references accounts (id) on delete set null,
    -- Who: `user:<id>`, `key:<id>`, `anonymous` or `system`.
    actor       text not null,
    action      text not null,
    target      text,
    ip          text,
    request_id  text,
    details     jsonb not null default '{}'
);
create index audit_log_account_time_idx on audit_log (account_id, occurred_at desc);
create index audit_log_action_time_idx on audit_log (action, occurred_at desc);
