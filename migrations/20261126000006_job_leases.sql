-- Long jobs leave the broker: their message is acknowledged once the job
-- is claimed, so RabbitMQ's consumer timeout (counted from delivery) can
-- never cut a two-hour file. Instead the worker holds a lease that it
-- renews while the job makes progress; a job whose lease ran out (its
-- worker died or hung) is put back in line through the outbox.

alter table jobs
    add column detached boolean not null default false,
    add column lease_until timestamptz;
create index jobs_lease_idx on jobs (lease_until) where detached;
