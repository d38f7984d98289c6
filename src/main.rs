//! The `veilgrid` command: a thin wrapper around [`veilgrid::cli`].
fn main() -> std::process::ExitCode {
    veilgrid::cli::main()
}
