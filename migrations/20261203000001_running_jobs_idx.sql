-- The metrics count running jobs per queue at every scrape; without this
-- the count would scan every finished job.
create index jobs_running_idx on jobs (queue) where status = 'running';
