-- The relay leaves a fresh row to the submit path that wrote it for longer
-- than that path may wait for a publish confirm; a submit path whose
-- publish failed hands its row over at once instead.
alter table outbox add column handed_over boolean not null default false;
