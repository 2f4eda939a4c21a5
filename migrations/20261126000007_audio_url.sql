-- Audio given by URL: the worker fetches it (under the SSRF guard), so the
-- input row holds the URL instead of the bytes.

alter table job_inputs
    add column source_url text,
    drop constraint job_inputs_one_kind,
    add constraint job_inputs_one_kind check (num_nonnulls(data, text, source_url) = 1);
