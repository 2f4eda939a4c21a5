-- Which queue (model and lane) a job waits in, for its place in line and
-- an estimated start from that queue's recent throughput.

alter table jobs add column queue text;
create index jobs_queued_idx on jobs (queue, id) where status = 'queued';
create index jobs_queue_finished_idx on jobs (queue, finished_at desc)
    where status = 'succeeded';
