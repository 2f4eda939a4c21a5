-- An audio_url job's length is known only once a worker fetched it. The
-- account's daily audio limit at submission travels with the input, so the
-- worker can grow the job's reservation to the real length within it, or
-- fail the job before inference.
alter table job_inputs add column audio_limit_ms bigint;
