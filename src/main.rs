//! The `veilgrid` command-line program.
fn main() {}
