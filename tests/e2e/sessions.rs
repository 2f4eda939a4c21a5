//! Logins, refresh-token rotation and reuse detection, logout, key
//! rotation and revocation, suspension — effective at once on every API
//! instance — and the audit trail they leave.
//!
//! Longer than most files: four tests, each one whole story (logging in,
//! a refresh token reused, keys rotated and revoked, accounts
//! administered; two of them across two API instances), checked step by
//! step with the audit entries each step leaves; they share `status` and
//! `audit_actions`.

use crate::common;

use common::{error_code, Options, TestApp};
use reqwest::Method;
use serde_json::{json, Value};
use voxq_shared::auth::scope::Role;

const PASSWORD: &str = "a sentence is a fine password 7";

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.call(
        Method::POST,
        "/v1/auth/refresh",
        None,
        Some(json!({ "refresh_token": token })),
    )
    .await
}

async fn status(app: &TestApp, base: &str, token: &str) -> u16 {
    app.call_at(base, Method::GET, "/v1/me", Some(token), None)
        .await
        .status()
        .as_u16()
}

async fn audit_actions(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("select action from audit_log order by id")
        .fetch_all(&app.db)
        .await
        .expect("audit")
}

fn no_worker() -> Options {
    Options {
        worker: false,
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn logins_answer_alike_for_unknown_users_and_lock_out_after_repeated_failures() {
    // The per-address login rate stays out of the way of the lockouts.
    let app = TestApp::spawn_with(Options {
        api_env: vec![("VOXQ_LOGIN_BURST".into(), "50".into())],
        ..no_worker()
    })
    .await;
    let (account, _) = app.new_account().await;
    app.new_user(account, "ana@example.com", PASSWORD, Role::Member)
        .await;

    let session = app.login("ANA@example.com", PASSWORD).await;
    assert_eq!(session["token_type"], "Bearer");
    assert!(session["refresh_token"]
        .as_str()
        .expect("refresh")
        .starts_with("voxqr_"));
    let me: Value = app
        .call(
            Method::GET,
            "/v1/me",
            session["access_token"].as_str(),
            None,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["account_id"], account.to_string());
    assert_eq!(
        me["scopes"],
        json!([
            "jobs:write",
            "jobs:read",
            "usage:read",
            "keys:manage",
            "webhooks:manage"
        ])
    );

    let attempt = |email: &'static str, password: &'static str| {
        app.call(
            Method::POST,
            "/v1/auth/login",
            None,
            Some(json!({ "email": email, "password": password })),
        )
    };
    // Wrong password and unknown user: same status, same body.
    let wrong = attempt("ana@example.com", "not the password at all").await;
    let unknown = attempt("nobody@example.com", "not the password at all").await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(unknown.status(), 401);
    let wrong: Value = wrong.json().await.expect("json");
    let unknown: Value = unknown.json().await.expect("json");
    assert_eq!(wrong, unknown);
    assert_eq!(wrong["error"]["code"], "invalid_credentials");

    // Four more failures lock the email, even for the right password.
    for _ in 0..4 {
        assert_eq!(
            attempt("ana@example.com", "still not it, sorry")
                .await
                .status(),
            401
        );
    }
    let locked = attempt("ana@example.com", PASSWORD).await;
    assert_eq!(locked.status(), 429);
    assert!(locked.headers().get("retry-after").is_some());
    assert_eq!(error_code(locked, 429).await, "login_locked");
    // An unknown email locks the same way, revealing nothing.
    for _ in 0..5 {
        attempt("ghost@example.com", "not the password at all").await;
    }
    assert_eq!(
        error_code(
            attempt("ghost@example.com", "anything at all here").await,
            429
        )
        .await,
        "login_locked"
    );

    let actions = audit_actions(&app).await;
    assert_eq!(
        actions.iter().filter(|a| *a == "login.succeeded").count(),
        1
    );
    assert_eq!(actions.iter().filter(|a| *a == "login.failed").count(), 11);
    assert!(actions.iter().any(|a| a == "login.locked"));
    let (ip, target): (Option<String>, Option<String>) =
        sqlx::query_as("select ip, target from audit_log where action = 'login.succeeded'")
            .fetch_one(&app.db)
            .await
            .expect("row");
    assert_eq!(ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(target.as_deref(), Some("email:ANA@example.com"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reused_refresh_token_revokes_its_whole_session_on_every_instance() {
    let mut app = TestApp::spawn_without_worker().await;
    let second = app.spawn_second_api();
    let (account, _) = app.new_account().await;
    app.new_user(account, "bo@example.com", PASSWORD, Role::Member)
        .await;
    let first = app.login("bo@example.com", PASSWORD).await;
    let r1 = first["refresh_token"].as_str().expect("refresh").to_owned();

    let rotated = refresh(&app, &r1).await;
    assert_eq!(rotated.status(), 200);
    let rotated: Value = rotated.json().await.expect("json");
    let r2 = rotated["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    let a2 = rotated["access_token"].as_str().expect("access").to_owned();
    assert_ne!(r1, r2);
    assert_eq!(status(&app, &second, &a2).await, 200);

    // r1 was spent: presenting it again is theft or a bug; the family dies.
    assert_eq!(
        error_code(refresh(&app, &r1).await, 401).await,
        "unauthorized"
    );
    assert_eq!(
        error_code(refresh(&app, &r2).await, 401).await,
        "unauthorized"
    );
    assert_eq!(status(&app, &app.api_url, &a2).await, 401);
    assert_eq!(status(&app, &second, &a2).await, 401);
    assert!(audit_actions(&app)
        .await
        .contains(&"session.revoked".to_owned()));

    // A new login works; logging out on one instance ends it on the other.
    let session = app.login("bo@example.com", PASSWORD).await;
    let access = session["access_token"].as_str().expect("access").to_owned();
    let refresh_token = session["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    assert_eq!(status(&app, &second, &access).await, 200);
    let out = app
        .call(Method::POST, "/v1/auth/logout", Some(&access), None)
        .await;
    assert_eq!(out.status(), 204);
    assert_eq!(status(&app, &second, &access).await, 401);
    assert_eq!(status(&app, &app.api_url, &access).await, 401);
    error_code(refresh(&app, &refresh_token).await, 401).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_rotate_with_or_without_grace_and_revocation_and_suspension_apply_at_once_everywhere()
{
    let mut app = TestApp::spawn_without_worker().await;
    let second = app.spawn_second_api();
    let admin = app.admin_key().await;
    let (account, _) = app.new_account().await;
    app.new_user(account, "cy@example.com", PASSWORD, Role::Member)
        .await;
    let session = app.login("cy@example.com", PASSWORD).await;
    let access = session["access_token"].as_str().expect("access").to_owned();

    // Created once, shown once; listed without the secret.
    let created = app
        .call(
            Method::POST,
            "/v1/keys",
            Some(&access),
            Some(json!({ "name": "ci", "scopes": ["jobs:read", "usage:read"] })),
        )
        .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.expect("json");
    let key = created["key"].as_str().expect("key").to_owned();
    let key_id = created["id"].as_str().expect("id").to_owned();
    assert!(key.starts_with(created["prefix"].as_str().expect("prefix")));
    let listed = app
        .call(Method::GET, "/v1/keys", Some(&access), None)
        .await
        .text()
        .await
        .expect("text");
    assert!(listed.contains(&key_id) && !listed.contains(&key[20..]));
    let me: Value = app.get_json("/v1/me", &key).await;
    assert_eq!(me["scopes"], json!(["jobs:read", "usage:read"]));

    // Rotation with a grace period: both work until it ends.
    let (app_ref, access_ref) = (&app, &access);
    let rotate = |id: String, grace: i64| async move {
        app_ref
            .call(
                Method::POST,
                &format!("/v1/keys/{id}/rotate"),
                Some(access_ref),
                Some(json!({ "grace_seconds": grace })),
            )
            .await
    };
    let graced: Value = rotate(key_id.clone(), 3600)
        .await
        .json()
        .await
        .expect("json");
    let key2 = graced["key"].as_str().expect("key").to_owned();
    let key2_id = graced["id"].as_str().expect("id").to_owned();
    assert_eq!(graced["scopes"], json!(["jobs:read", "usage:read"]));
    assert!(graced["replaces"]["expires_at"].is_string());
    assert_eq!(status(&app, &second, &key).await, 200);
    assert_eq!(status(&app, &second, &key2).await, 200);
    // A rotated key cannot be rotated again.
    assert_eq!(rotate(key_id.clone(), 0).await.status(), 404);

    // Rotation without grace: the old key stops at once, on both instances.
    let now: Value = rotate(key2_id.clone(), 0).await.json().await.expect("json");
    let key3 = now["key"].as_str().expect("key").to_owned();
    let key3_id = now["id"].as_str().expect("id").to_owned();
    assert_eq!(status(&app, &app.api_url, &key2).await, 401);
    assert_eq!(status(&app, &second, &key2).await, 401);
    assert_eq!(status(&app, &second, &key3).await, 200);

    // Revocation on one instance is seen by the other at once.
    assert_eq!(status(&app, &second, &key3).await, 200);
    let revoked = app
        .call(
            Method::DELETE,
            &format!("/v1/keys/{key3_id}"),
            Some(&access),
            None,
        )
        .await;
    assert_eq!(revoked.status(), 200);
    assert_eq!(status(&app, &second, &key3).await, 401);

    // Suspension stops keys and tokens at once; lifting it restores them.
    let fresh = app
        .new_key(
            account,
            &voxq_shared::auth::scope::Scopes::new(voxq_shared::auth::scope::Scope::MEMBER),
        )
        .await;
    let (second_ref, admin_ref) = (&second, &admin);
    let suspend = |suspended: bool| async move {
        app_ref
            .call_at(
                second_ref,
                Method::PATCH,
                &format!("/v1/admin/accounts/{account}"),
                Some(admin_ref),
                Some(json!({ "suspended": suspended })),
            )
            .await
    };
    let body: Value = suspend(true).await.json().await.expect("json");
    assert!(body["suspended_at"].is_string());
    for token in [&fresh, &access] {
        for base in [&app.api_url, &second] {
            let response = app
                .call_at(base, Method::GET, "/v1/me", Some(token), None)
                .await;
            assert_eq!(error_code(response, 403).await, "account_suspended");
        }
    }
    let login = app
        .call(
            Method::POST,
            "/v1/auth/login",
            None,
            Some(json!({ "email": "cy@example.com", "password": PASSWORD })),
        )
        .await;
    assert_eq!(error_code(login, 403).await, "account_suspended");
    suspend(false).await;
    assert_eq!(status(&app, &app.api_url, &fresh).await, 200);
    assert_eq!(status(&app, &second, &access).await, 200);

    let actions = audit_actions(&app).await;
    for action in [
        "key.created",
        "key.rotated",
        "key.revoked",
        "account.suspended",
        "account.unsuspended",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }
    let actor: String =
        sqlx::query_scalar("select actor from audit_log where action = 'key.revoked'")
            .fetch_one(&app.db)
            .await
            .expect("actor");
    assert!(actor.starts_with("user:"), "{actor}");
}

#[tokio::test(flavor = "multi_thread")]
async fn admins_manage_accounts_tiers_and_overrides_and_weak_passwords_are_refused() {
    let app = TestApp::spawn_without_worker().await;
    let admin = app.admin_key().await;
    let create =
        |body: Value| app.call(Method::POST, "/v1/admin/accounts", Some(&admin), Some(body));
    let weak =
        create(json!({"name": "acme", "owner": {"email": "boss@acme.io", "password": "password"}}))
            .await;
    assert_eq!(error_code(weak, 422).await, "weak_password");
    let common = create(
        json!({"name": "acme", "owner": {"email": "boss@acme.io", "password": "PasswordPassword"}}),
    )
    .await;
    assert_eq!(error_code(common, 422).await, "weak_password");
    let contextual = create(json!({"name": "acme", "owner": {"email": "boss@acme.io", "password": "boss@acme.io is my password"}})).await;
    assert_eq!(error_code(contextual, 422).await, "weak_password");
    let bad_tier = create(json!({"name": "acme", "tier": "gold"})).await;
    assert_eq!(error_code(bad_tier, 422).await, "invalid_tier");
    let bad_limit = create(json!({"name": "acme", "limits": {"burst": 0}})).await;
    assert_eq!(error_code(bad_limit, 422).await, "invalid_limits");
    let unknown_limit = create(json!({"name": "acme", "limits": {"gpus": 3}})).await;
    assert_eq!(unknown_limit.status(), 422);
    let count: i64 = sqlx::query_scalar("select count(*) from accounts where name = 'acme'")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(count, 0, "refused requests create nothing");

    let created = create(json!({
        "name": "acme",
        "tier": "basic",
        "limits": {"concurrent_jobs": 1},
        "owner": {"email": "boss@acme.io", "password": PASSWORD}
    }))
    .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.expect("json");
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(created["owner"]["role"], "member");
    // A second account whose owner's email is taken is refused whole: no
    // account without its owner is left behind.
    let taken = create(json!({
        "name": "acme-two",
        "owner": {"email": "BOSS@acme.io", "password": PASSWORD}
    }))
    .await;
    assert_eq!(error_code(taken, 409).await, "email_taken");
    let orphans: i64 = sqlx::query_scalar("select count(*) from accounts where name = 'acme-two'")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(orphans, 0, "an account without its owner was left behind");
    let session = app.login("boss@acme.io", PASSWORD).await;
    let access = session["access_token"].as_str().expect("access").to_owned();
    let me: Value = app.get_json("/v1/me", &access).await;
    assert_eq!(me["tier"], "basic");
    assert_eq!(me["limits"]["concurrent_jobs"], 1);
    assert_eq!(me["limits"]["requests_per_minute"], 300);

    // Tier change and override change apply to the next request.
    let patched = app
        .call(
            Method::PATCH,
            &format!("/v1/admin/accounts/{id}"),
            Some(&admin),
            Some(json!({"tier": "pro", "limits": {}})),
        )
        .await;
    assert_eq!(patched.status(), 200);
    let me: Value = app.get_json("/v1/me", &access).await;
    assert_eq!(me["tier"], "pro");
    assert_eq!(me["limits"]["concurrent_jobs"], 32);

    let dup = app
        .call(
            Method::POST,
            &format!("/v1/admin/accounts/{id}/users"),
            Some(&admin),
            Some(json!({"email": "BOSS@acme.io", "password": PASSWORD})),
        )
        .await;
    assert_eq!(error_code(dup, 409).await, "email_taken");
    let listed: Value = app
        .call(
            Method::GET,
            "/v1/admin/accounts?limit=1000",
            Some(&admin),
            None,
        )
        .await
        .json()
        .await
        .expect("json");
    assert!(listed["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .any(|a| a["id"] == id.as_str()));
    // Malformed queries get the usual error shape.
    for path in ["/v1/admin/accounts?limit=many", "/v1/usage?from=yesterday"] {
        let response = app.call(Method::GET, path, Some(&admin), None).await;
        assert_eq!(error_code(response, 400).await, "bad_request", "{path}");
    }
    let missing = app
        .call(
            Method::GET,
            &format!("/v1/admin/accounts/{}", uuid::Uuid::now_v7()),
            Some(&admin),
            None,
        )
        .await;
    error_code(missing, 404).await;
    let hash: String =
        sqlx::query_scalar("select password_hash from users where email = 'boss@acme.io'")
            .fetch_one(&app.db)
            .await
            .expect("hash");
    assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
}
