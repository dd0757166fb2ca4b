//! The `enroll` binary's own contract: version and exit codes. Besides that, this test makes
//! `cargo test --workspace` build `enroll`, which the workspace's CLI tests (in the root
//! package) run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn version_names_the_program_and_its_version() {
    let output = Command::new(env!("CARGO_BIN_EXE_enroll"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("enroll {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_roster_that_cannot_be_read_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.csv");
    let output = Command::new(env!("CARGO_BIN_EXE_enroll"))
        .arg("validate")
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
}
