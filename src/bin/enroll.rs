//! The `enroll` command line.
fn main() {}
