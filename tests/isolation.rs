//! One account can never read, or even detect, another's job.

mod common;

use std::time::Duration;

use common::{error_code, speech, TestApp};

#[tokio::test(flavor = "multi_thread")]
async fn another_account_gets_404_for_a_job_and_the_owner_sees_it() {
    let app = TestApp::spawn().await;
    let (_, owner) = app.new_account().await;
    let (_, stranger) = app.new_account().await;
    let wav = speech::wav_16k("Can you tell me where the nearest hospital is?");
    let id = app.submit_ok(&owner, wav, "a.wav").await;

    // Before and after completion (the second read is served from Redis).
    assert_eq!(
        error_code(app.get_job(&stranger, &id).await, 404).await,
        "not_found"
    );
    let job = app
        .wait_for_job(&owner, &id, Duration::from_secs(300))
        .await;
    assert_eq!(job["status"], "succeeded");
    let cached = app.get_job(&owner, &id).await;
    assert_eq!(cached.status(), 200);
    let key = format!("{}:job:{id}", app.namespace);
    let mut redis = redis::Client::open(common::REDIS_URL)
        .expect("redis")
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let exists: bool = redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .expect("exists");
    assert!(exists, "finished job is cached");
    assert_eq!(
        error_code(app.get_job(&stranger, &id).await, 404).await,
        "not_found"
    );

    // Unknown and malformed ids answer exactly like someone else's job.
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_eq!(
        error_code(app.get_job(&owner, &unknown).await, 404).await,
        "not_found"
    );
    assert_eq!(
        error_code(app.get_job(&owner, "../../etc/passwd").await, 404).await,
        "not_found"
    );
}
