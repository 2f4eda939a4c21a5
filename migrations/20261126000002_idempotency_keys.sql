-- Idempotency-Key on POST /v1/jobs (IETF httpapi idempotency-key draft,
-- Stripe semantics): per account, kept 24 hours. A row without a response
-- is a request in progress; its lock lets a retry take over if the API
-- died before finishing it.

create table idempotency_keys (
    account_id       uuid not null references accounts (id) on delete cascade,
    key              text not null,
    -- SHA-256 of the request's meaning (fields and file bytes, not framing).
    request_hash     bytea not null,
    created_at       timestamptz not null default now(),
    locked_until     timestamptz not null,
    response_status  smallint,
    response_body    bytea,
    job_id           uuid,
    primary key (account_id, key),
    constraint idempotency_keys_key_length check (char_length(key) between 1 and 255),
    constraint idempotency_keys_hash_length check (octet_length(request_hash) = 32)
);
create index idempotency_keys_created_idx on idempotency_keys (created_at);
