// Tells cargo when to rerun this script, and so recompile the crate: on
// changes to compile-time inputs that stable Rust cannot track by itself:
// - `sqlx::migrate!` embeds the migrations;
// - the query macros read the committed query data (`.sqlx`), or describe
//   their queries on the database named by DATABASE_URL when SQLX_OFFLINE
//   is off, writing the data into SQLX_OFFLINE_DIR. ops/check-sqlx.sh
//   relies on a new SQLX_OFFLINE_DIR re-running every macro.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
    println!("cargo:rerun-if-changed=../.sqlx");
    for var in ["SQLX_OFFLINE", "SQLX_OFFLINE_DIR", "DATABASE_URL"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
}
