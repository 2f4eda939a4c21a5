//! A credential never reaches a key stronger than itself, and keys carry
//! their user's authority: they lose what the user loses.

use crate::common;

use common::{error_code, TestApp};
use reqwest::Method;
use serde_json::{json, Value};
use voxq_shared::auth::scope::{Role, Scope, Scopes};

fn key_ids(list: &Value) -> Vec<String> {
    list["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["id"].as_str().map(str::to_owned))
        .collect()
}

async fn created(response: reqwest::Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(status, 201, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn a_weaker_key_cannot_read_rotate_revoke_or_mint_a_stronger_one() {
    let app = TestApp::spawn_without_worker().await;
    let (account, strong) = app
        .new_account_with(
            voxq_shared::auth::limits::Tier::Enterprise,
            &Scopes::new(Scope::ALL),
        )
        .await;
    let weak = app
        .new_key(account, &Scopes::new([Scope::KeysManage, Scope::JobsRead]))
        .await;
    let all: Value = app.get_json("/v1/keys", &strong).await;
    let ids = key_ids(&all);
    assert_eq!(ids.len(), 2, "{all}");
    let strong_id = all["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| {
            k["scopes"]
                .as_array()
                .is_some_and(|s| s.contains(&json!("admin")))
        })
        .and_then(|k| k["id"].as_str())
        .expect("the admin key")
        .to_owned();

    // The weaker key does not see the stronger one…
    let visible = key_ids(&app.get_json("/v1/keys", &weak).await);
    assert_eq!(visible.len(), 1);
    assert!(!visible.contains(&strong_id));
    // …and cannot touch it by id.
    for (method, path) in [
        (Method::GET, format!("/v1/keys/{strong_id}")),
        (Method::POST, format!("/v1/keys/{strong_id}/rotate")),
        (Method::DELETE, format!("/v1/keys/{strong_id}")),
    ] {
        let response = app.call(method.clone(), &path, Some(&weak), None).await;
        assert_eq!(
            error_code(response, 403).await,
            "insufficient_scope",
            "{method} {path}"
        );
    }
    // Nor mint one with more than it has.
    let response = app
        .call(
            Method::POST,
            "/v1/keys",
            Some(&weak),
            Some(json!({"scopes": ["admin"]})),
        )
        .await;
    assert_eq!(error_code(response, 403).await, "insufficient_scope");
    let minted = created(
        app.call(Method::POST, "/v1/keys", Some(&weak), Some(json!({})))
            .await,
    )
    .await;
    assert_eq!(minted["scopes"], json!(["jobs:read", "keys:manage"]));

    // The stronger key still works and was neither rotated nor revoked.
    let after: Value = app
        .get_json(&format!("/v1/keys/{strong_id}"), &strong)
        .await;
    assert!(after["revoked_at"].is_null(), "{after}");
    // What the weak key may touch, it may: its own key rotates.
    let own = visible[0].clone();
    let rotated = created(
        app.call(
            Method::POST,
            &format!("/v1/keys/{own}/rotate"),
            Some(&weak),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(rotated["scopes"], json!(["jobs:read", "keys:manage"]));
    // And the strong key may revoke the weak one's replacement.
    let replacement = rotated["id"].as_str().expect("id");
    let response = app
        .call(
            Method::DELETE,
            &format!("/v1/keys/{replacement}"),
            Some(&strong),
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_lose_what_their_user_loses_through_any_chain_of_keys() {
    let app = TestApp::spawn_without_worker().await;
    let (account, _) = app.new_account().await;
    let password = "correct horse battery staple 42";
    let user = app
        .new_user(account, "operator@example.com", password, Role::Admin)
        .await;
    let session = app.login("operator@example.com", password).await;
    let access = session["access_token"].as_str().expect("token").to_owned();

    // The user makes a key with admin, and that key makes another.
    let first = created(
        app.call(
            Method::POST,
            "/v1/keys",
            Some(&access),
            Some(json!({"scopes": ["admin", "keys:manage", "jobs:read"]})),
        )
        .await,
    )
    .await;
    let first_key = first["key"].as_str().expect("key").to_owned();
    let second = created(
        app.call(Method::POST, "/v1/keys", Some(&first_key), Some(json!({})))
            .await,
    )
    .await;
    let second_key = second["key"].as_str().expect("key").to_owned();
    let second_id = second["id"].as_str().expect("id").to_owned();
    for key in [&first_key, &second_key] {
        let response = app
            .call(Method::GET, "/v1/admin/accounts", Some(key), None)
            .await;
        assert_eq!(response.status(), 200, "admin works while the user is one");
    }

    // Demoted: neither key keeps admin, though their stored scopes say so.
    sqlx::query("update users set role = 'member' where id = $1")
        .bind(user)
        .execute(&app.db)
        .await
        .expect("demote");
    for key in [&first_key, &second_key] {
        let response = app
            .call(Method::GET, "/v1/admin/accounts", Some(key), None)
            .await;
        assert_eq!(error_code(response, 403).await, "insufficient_scope");
        // What a member may do still works.
        let response = app.call(Method::GET, "/v1/keys", Some(key), None).await;
        assert_eq!(response.status(), 200);
    }
    // A demoted key cannot act on a key that still names admin.
    let response = app
        .call(
            Method::POST,
            &format!("/v1/keys/{second_id}/rotate"),
            Some(&first_key),
            None,
        )
        .await;
    assert_eq!(error_code(response, 403).await, "insufficient_scope");

    // Removed: the keys keep nothing at all (not the unbound powers of an
    // operator's key).
    sqlx::query("delete from users where id = $1")
        .bind(user)
        .execute(&app.db)
        .await
        .expect("remove");
    for key in [&first_key, &second_key] {
        let response = app.call(Method::GET, "/v1/keys", Some(key), None).await;
        assert_eq!(error_code(response, 403).await, "insufficient_scope");
        let response = app
            .call(Method::GET, "/v1/admin/accounts", Some(key), None)
            .await;
        assert_eq!(error_code(response, 403).await, "insufficient_scope");
    }
}
