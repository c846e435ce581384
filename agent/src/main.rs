//! `languard-agent`: runs on each game host. See `languard_agent::cli`.

fn main() -> std::process::ExitCode {
    languard_agent::cli::main()
}
