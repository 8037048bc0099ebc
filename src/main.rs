use std::process::ExitCode;

fn main() -> ExitCode {
    intelli::cli::main()
}
