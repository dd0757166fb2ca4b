//! The handler binary on its own, before the host talks to it. Besides checking the start-up
//! contract, this test makes `cargo test --workspace` build `handler`, which the workspace's
//! end-to-end tests (in the root package) then drive through the host harness.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn without_the_hosts_port_it_stops_and_names_the_setting() {
    let output = Command::new(env!("CARGO_BIN_EXE_handler"))
        .env_clear()
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("FUNCTIONS_CUSTOMHANDLER_PORT is not set"),
        "{stderr}"
    );
}
