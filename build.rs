//! Tells the tests what this machine can run, so that a test which cannot
//! run here is reported as ignored instead of passing without doing
//! anything. Under CI (`CI` set) nothing is ignored: a missing Postgres or
//! chromedriver fails the run.
use std::env;
use std::path::Path;

/// Where Debian's chromium-driver package puts chromedriver; the browser
/// tests start it from here.
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

fn main() {
    println!("cargo::rustc-check-cfg=cfg(twin_no_postgres)");
    println!("cargo::rustc-check-cfg=cfg(twin_no_browser)");
    println!("cargo::rerun-if-changed=build.rs");
    // sqlx::migrate! embeds the migration files but, on stable Rust, does not
    // tell Cargo about the folder: a new migration must rebuild the crate.
    println!("cargo::rerun-if-changed=migrations");
    println!("cargo::rerun-if-env-changed=TEST_DATABASE_URL");
    println!("cargo::rerun-if-env-changed=CI");
    // The folder, not the file: a missing file would rerun this script,
    // and rebuild the crate, on every build.
    println!("cargo::rerun-if-changed=/usr/bin");
    let ci = env::var_os("CI").is_some_and(|v| !v.is_empty());
    let postgres = env::var("TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty());
    if !ci && !postgres {
        println!("cargo::rustc-cfg=twin_no_postgres");
    }
    if !ci && !Path::new(CHROMEDRIVER).exists() {
        println!("cargo::rustc-cfg=twin_no_browser");
    }
}
