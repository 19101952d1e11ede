use std::process::ExitCode;

fn main() -> ExitCode {
    sysmon::app::main()
}
