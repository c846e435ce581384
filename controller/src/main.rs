//! `languard-controller`: the centre of a Languard fleet. See `languard_controller::cli`.

fn main() -> std::process::ExitCode {
    languard_controller::cli::main()
}
