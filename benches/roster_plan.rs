//! Benchmarks for roster validation and planning.
fn main() {}
