-- Speech translation jobs, and the content-addressed result cache.

alter table jobs drop constraint jobs_kind_check;
alter table jobs
    add constraint jobs_kind_check check (kind in ('transcribe', 'translate', 'speech_translate'));

-- What an account pays for a job answered from the cache: `bill` (the
-- input's audio seconds or characters, as if it had run), `free` (nothing
-- but the request), or `off` (the account opts out: every job runs).
alter table accounts
    add column result_cache text not null default 'bill',
    add constraint accounts_result_cache_check check (result_cache in ('bill', 'free', 'off'));

-- Results keyed by SHA-256 of (input bytes, model, result-shaping
-- parameters); shared across accounts, since equal keys mean equal inputs.
create table result_cache (
    key        bytea primary key,
    model      text not null,
    result     jsonb not null,
    created_at timestamptz not null default now(),
    hits       bigint not null default 0,
    constraint result_cache_key_length check (octet_length(key) = 32)
);
create index result_cache_created_at on result_cache (created_at);

-- Cache hits are still jobs; mark them so usage reports can tell.
alter table jobs add column cache_hit boolean not null default false;
