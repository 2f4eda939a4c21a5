// `sqlx::migrate!` embeds the migrations at compile time; rebuild when
// they change (stable Rust cannot track the directory by itself).
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
