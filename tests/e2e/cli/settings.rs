//! Where `voxq` takes its URL and key from (flags, environment, profile
//! file), its settings errors, completions and help.

use crate::common;

use common::{cli::Voxq, TestApp};

/// Flags beat environment variables, which beat the profile file; the
/// profile is chosen by --profile or VOXQ_PROFILE; a missing key or an
/// unknown profile is a settings error (exit 2). Completions print.
#[tokio::test(flavor = "multi_thread")]
async fn settings_come_from_flags_then_environment_then_the_profile_file() {
    let app = TestApp::spawn_without_worker().await;
    let (_, key) = app.new_account().await;
    let dead = "http://127.0.0.1:9";
    let config_dir = tempfile::tempdir().expect("tempdir");
    let config = config_dir.path().join("voxq.toml");
    std::fs::write(
        &config,
        format!(
            "[default]\nurl = \"{dead}\"\napi_key = \"{key}\"\n\n[work]\nurl = \"{}\"\napi_key = \"{key}\"\n",
            app.api_url
        ),
    )
    .expect("profile file");
    let config_arg = config.display().to_string();
    let with_file = || Voxq::bare().env("VOXQ_CONFIG", &config_arg);

    // The default profile's URL is dead: it is the one used.
    let ran = with_file().run(&["usage"]).await;
    assert_eq!(ran.code, 1, "{ran:?}");
    assert!(ran.stderr.contains("127.0.0.1:9"), "{ran:?}");
    with_file().run(&["--profile", "work", "usage"]).await.ok();
    with_file()
        .env("VOXQ_PROFILE", "work")
        .run(&["usage"])
        .await
        .ok();
    // The environment's URL over the profile's; the key from the profile.
    with_file()
        .env("VOXQ_URL", &app.api_url)
        .run(&["usage"])
        .await
        .ok();
    with_file()
        .env("VOXQ_API_URL", &app.api_url)
        .run(&["usage"])
        .await
        .ok();
    // The flag over the environment.
    let ran = with_file()
        .env("VOXQ_URL", &app.api_url)
        .run(&["usage", "--url", dead])
        .await;
    assert_eq!(ran.code, 1, "{ran:?}");
    // The environment's key over the profile's, and the flag's over both.
    let ran = with_file()
        .env("VOXQ_PROFILE", "work")
        .env("VOXQ_API_KEY", "voxq_not-a-key")
        .run(&["usage"])
        .await;
    assert!(ran.code == 1 && ran.stderr.contains("401"), "{ran:?}");
    with_file()
        .env("VOXQ_PROFILE", "work")
        .env("VOXQ_API_KEY", "voxq_not-a-key")
        .run(&["usage", "--api-key", &key])
        .await
        .ok();

    let ran = with_file().run(&["--profile", "nope", "usage"]).await;
    assert_eq!(ran.code, 2, "{ran:?}");
    assert!(ran.stderr.contains("no profile [nope]"), "{ran:?}");
    let ran = Voxq::bare()
        .env("VOXQ_URL", &app.api_url)
        .run(&["usage"])
        .await;
    assert_eq!(ran.code, 2, "{ran:?}");
    assert!(ran.stderr.contains("--api-key"), "{ran:?}");

    // The default place of the profile file, under HOME.
    let home = Voxq::bare();
    let file = home.home().join(".config/voxq/config.toml");
    std::fs::create_dir_all(file.parent().expect("folder")).expect("folder");
    std::fs::write(
        &file,
        format!(
            "[default]\nurl = \"{}\"\napi_key = \"{key}\"\n",
            app.api_url
        ),
    )
    .expect("profile file");
    home.run(&["usage"]).await.ok();

    for shell in ["bash", "zsh", "fish"] {
        let script = Voxq::bare().run(&["completions", shell]).await.ok();
        assert!(
            script.stdout.contains("transcribe") && script.stdout.contains("jobs"),
            "{shell}: {script:?}"
        );
    }
    let help = Voxq::bare().run(&["--help"]).await.ok();
    assert!(
        help.stdout.contains("config.toml") && help.stdout.contains("VOXQ_API_KEY"),
        "{help:?}"
    );
}
