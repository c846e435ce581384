//! The fake Arma 3 dedicated server binary. See the library docs or run with `-fakeHelp`.

fn main() {
    let code = fake_arma3server::run(std::env::args_os().skip(1).collect());
    std::process::exit(code);
}
