//! `ipwash`: parse arguments, run, and map errors to exit codes. This is the
//! only place that decides an exit code.

use std::process::ExitCode;

use clap::Parser;
use ipwash::cli::{self, Cli, Command};
use ipwash::error::CliError;

fn main() -> ExitCode {
    let args = match Cli::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let res: Result<(), CliError> = match &args.command {
        Command::Wash(a) => ipwash::pipeline::run_wash(a),
        Command::Map(a) => cli::run_map(a),
        Command::Text(a) => ipwash::text::run_text(a),
        Command::Keygen(a) => cli::run_keygen(a),
        Command::Scan(a) => ipwash::fanout::run_scan(a),
        Command::State(a) => ipwash::fanout::run_state(a),
        Command::Bench(a) => ipwash::bench::run_bench(a),
        Command::Synth(a) => ipwash::synth::run_synth(a),
        Command::Bloom(a) => ipwash::bloomcli::run_bloom(a),
        Command::Completions(a) => ipwash::manual::run_completions(a),
        Command::Man(a) => ipwash::manual::run_man(a),
        Command::Audit(a) => ipwash::audit::run_audit(a),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            if !e.msg.is_empty() {
                eprintln!("ipwash: {e}");
            }
            ExitCode::from(e.code)
        }
    }
}
