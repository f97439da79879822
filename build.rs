//! Build script: records the git commit for `service_build_info{commit}` as the
//! `BUILD_GIT_COMMIT` environment variable (absent outside a git checkout: "unknown").

use std::path::Path;
use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit()));
    if let Some(c) = commit {
        println!("cargo:rustc-env=BUILD_GIT_COMMIT={c}");
    }
    // Re-run when HEAD moves (checkout, commit). Only name files that exist: a missing
    // path would make cargo re-run this script on every build.
    let git = Path::new(".git");
    for f in ["HEAD", "packed-refs"] {
        if git.join(f).exists() {
            println!("cargo:rerun-if-changed=.git/{f}");
        }
    }
    if let Ok(head) = std::fs::read_to_string(git.join("HEAD")) {
        if let Some(r) = head.trim().strip_prefix("ref: ") {
            if git.join(r).exists() {
                println!("cargo:rerun-if-changed=.git/{r}");
            }
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
