//! Every route × every kind of bad credential gets the right refusal, and
//! no route shows one account's objects to another.

use crate::common;

use common::{error_code, jwt_claims, sign_jwt, unsigned_jwt, TestApp, JWT_SECRET};
use reqwest::Method;
use serde_json::{json, Value};
use voxq_shared::auth::scope::{Role, Scope, Scopes};

struct Route {
    method: Method,
    path: String,
    scope: Option<Scope>,
    body: Option<Value>,
    /// Names one account's object: other accounts must get 404.
    owned: bool,
}

fn route(
    method: Method,
    path: String,
    scope: Option<Scope>,
    body: Option<Value>,
    owned: bool,
) -> Route {
    Route {
        method,
        path,
        scope,
        body,
        owned,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_refuses_every_bad_credential_and_hides_other_accounts_objects() {
    let app = TestApp::spawn_without_worker().await;
    let (owner, owner_key) = app.new_account().await;
    let (_, other_key) = app.new_account().await;
    let password = "correct horse battery staple 42";
    app.new_user(owner, "owner@example.com", password, Role::Member)
        .await;
    let session = app.login("owner@example.com", password).await;
    let access = session["access_token"].as_str().expect("token").to_owned();

    // Objects of the owner's account.
    let job = app.submit_text(&owner_key, "Guten Morgen.").await;
    assert_eq!(job.status(), 202);
    let job_id = job.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let keys: Value = app.get_json("/v1/keys", &owner_key).await;
    let key_id = keys["keys"][0]["id"].as_str().expect("key id").to_owned();

    // Bad credentials of every kind.
    let unknown_key = {
        let k = voxq_shared::api_key::generate(&secrecy::SecretString::from(common::PEPPER));
        secrecy::ExposeSecret::expose_secret(&k.plaintext).to_owned()
    };
    let revoked_key = app.new_key(owner, &Scopes::new(Scope::MEMBER)).await;
    sqlx::query("update api_keys set revoked_at = now() where public_id = $1")
        .bind(
            voxq_shared::api_key::parse(&revoked_key)
                .expect("key")
                .public_id,
        )
        .execute(&app.db)
        .await
        .expect("revoke");
    let claims = jwt_claims(&access);
    let now = chrono::Utc::now().timestamp();
    let mut expired = claims.clone();
    expired["iat"] = json!(now - 7200);
    expired["nbf"] = json!(now - 7200);
    expired["exp"] = json!(now - 3600);
    let mut wrong_aud = claims.clone();
    wrong_aud["aud"] = json!("another-service");
    let mut wrong_iss = claims.clone();
    wrong_iss["iss"] = json!("someone-else");
    let bad: Vec<(&str, Option<String>)> = vec![
        ("no credentials", None),
        ("unknown key", Some(unknown_key)),
        ("revoked key", Some(revoked_key)),
        ("expired token", Some(sign_jwt(&expired, JWT_SECRET))),
        (
            "token signed with another key",
            Some(sign_jwt(&claims, "another-secret-0123456789abcdef0123")),
        ),
        ("alg none", Some(unsigned_jwt(&claims))),
        ("wrong aud", Some(sign_jwt(&wrong_aud, JWT_SECRET))),
        ("wrong iss", Some(sign_jwt(&wrong_iss, JWT_SECRET))),
        ("garbage", Some("not-a-token".into())),
    ];

    let account = owner.to_string();
    let routes = vec![
        route(
            Method::POST,
            "/v1/jobs".into(),
            Some(Scope::JobsWrite),
            Some(json!({"kind": "translate", "text": "hallo", "target_language": "en"})),
            false,
        ),
        route(
            Method::GET,
            "/v1/jobs".into(),
            Some(Scope::JobsRead),
            None,
            false,
        ),
        route(
            Method::GET,
            format!("/v1/jobs/{job_id}"),
            Some(Scope::JobsRead),
            None,
            true,
        ),
        route(
            Method::GET,
            "/v1/usage".into(),
            Some(Scope::UsageRead),
            None,
            false,
        ),
        route(
            Method::GET,
            "/v1/keys".into(),
            Some(Scope::KeysManage),
            None,
            false,
        ),
        route(
            Method::POST,
            "/v1/keys".into(),
            Some(Scope::KeysManage),
            Some(json!({"name": "x", "scopes": ["jobs:read"]})),
            false,
        ),
        route(
            Method::GET,
            format!("/v1/keys/{key_id}"),
            Some(Scope::KeysManage),
            None,
            true,
        ),
        route(
            Method::POST,
            format!("/v1/keys/{key_id}/rotate"),
            Some(Scope::KeysManage),
            Some(json!({"grace_seconds": 60})),
            true,
        ),
        route(
            Method::DELETE,
            format!("/v1/keys/{key_id}"),
            Some(Scope::KeysManage),
            None,
            true,
        ),
        route(
            Method::GET,
            "/v1/admin/accounts".into(),
            Some(Scope::Admin),
            None,
            false,
        ),
        route(
            Method::POST,
            "/v1/admin/accounts".into(),
            Some(Scope::Admin),
            Some(json!({"name": "intruder"})),
            false,
        ),
        route(
            Method::GET,
            format!("/v1/admin/accounts/{account}"),
            Some(Scope::Admin),
            None,
            false,
        ),
        route(
            Method::PATCH,
            format!("/v1/admin/accounts/{account}"),
            Some(Scope::Admin),
            Some(json!({"tier": "enterprise"})),
            false,
        ),
        route(
            Method::POST,
            format!("/v1/admin/accounts/{account}/users"),
            Some(Scope::Admin),
            Some(json!({"email": "x@example.com", "password": "a long enough passphrase here"})),
            false,
        ),
        route(Method::GET, "/v1/me".into(), None, None, false),
        route(Method::POST, "/v1/auth/logout".into(), None, None, false),
    ];

    for r in &routes {
        for (what, token) in &bad {
            let response = app
                .call(r.method.clone(), &r.path, token.as_deref(), r.body.clone())
                .await;
            let www = response.headers().get("www-authenticate").cloned();
            let code = error_code(response, 401).await;
            assert_eq!(code, "unauthorized", "{} {} with {what}", r.method, r.path);
            assert!(
                www.is_some(),
                "401 without WWW-Authenticate: {} {}",
                r.method,
                r.path
            );
        }
        // Another account's valid key: its own objects only.
        if r.owned {
            let response = app
                .call(r.method.clone(), &r.path, Some(&other_key), r.body.clone())
                .await;
            assert_eq!(
                error_code(response, 404).await,
                "not_found",
                "{} {} as another account",
                r.method,
                r.path
            );
        }
        // A credential without the route's scope.
        if let Some(scope) = r.scope {
            let narrow = Scopes::new(
                Scope::ALL
                    .into_iter()
                    .filter(|s| *s != scope && *s != Scope::Admin),
            );
            let key = app.new_key(owner, &narrow).await;
            let response = app
                .call(r.method.clone(), &r.path, Some(&key), r.body.clone())
                .await;
            assert_eq!(
                error_code(response, 403).await,
                "insufficient_scope",
                "{} {} without {scope}",
                r.method,
                r.path
            );
        }
    }

    // The matrix is not vacuous: the right credentials get through.
    for token in [&owner_key, &access] {
        let response = app
            .call(
                Method::GET,
                &format!("/v1/jobs/{job_id}"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(response.status(), 200);
        let response = app.call(Method::GET, "/v1/me", Some(token), None).await;
        assert_eq!(response.status(), 200);
    }
    // Lists show one's own objects only.
    let theirs: Value = app.get_json("/v1/keys", &other_key).await;
    let ids: Vec<&str> = theirs["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 1);
    assert!(!ids.contains(&key_id.as_str()));
    let usage: Value = app.get_json("/v1/usage", &other_key).await;
    assert_eq!(usage["resources"]["requests"]["used"], 0.0, "{usage}");
    // Member tokens never carry admin, and a key cannot be wider than its
    // creator.
    let response = app
        .call(
            Method::POST,
            "/v1/keys",
            Some(&access),
            Some(json!({"scopes": ["admin"]})),
        )
        .await;
    assert_eq!(error_code(response, 403).await, "insufficient_scope");
    let response = app
        .call(
            Method::POST,
            "/v1/keys",
            Some(&access),
            Some(json!({"scopes": ["root"]})),
        )
        .await;
    assert_eq!(error_code(response, 422).await, "invalid_scope");
    // Logout is for sessions; keys are revoked instead.
    let response = app
        .call(Method::POST, "/v1/auth/logout", Some(&owner_key), None)
        .await;
    error_code(response, 400).await;
}
