//! The `kvfleet` binary: parse, call the library, print.

use std::process::ExitCode;

fn main() -> ExitCode {
    kvfleet::process_memory::tune();
    match kvfleet::cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", kvfleet::error::one_line_message(&err));
            if kvfleet::error::is_input_error(&err) {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
