//! Rebuild when a migration changes: `sqlx::migrate!` embeds the folder at compile time and
//! cargo would not notice a new file on its own.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
