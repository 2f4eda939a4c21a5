-- A key made by a user (or by a key a user made) carries that user's
-- authority: it can never do more than the user may do now. Removing the
-- user must therefore not turn the key into an unbound one, so the link is
-- kept (no longer nulled) and a missing user means no scopes at all.

alter table api_keys drop constraint api_keys_created_by_user_fkey;
comment on column api_keys.created_by_user is
    'The user whose authority the key carries; null for keys an operator made. Kept after the user is removed.';
