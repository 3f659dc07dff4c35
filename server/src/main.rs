//! perch-server: the Perch appliance.
#![forbid(unsafe_code)]

// Layers, from the bottom: the leaves (`selfmon`, `tls`), over the crates perch-auth,
// perch-upstream, perch-certs and perch-time; the engine client (`engine`); the request
// layer every handler shares (`request`); the features (`features`); the `router`; the
// connection stack (`front`); start-up (`server` over `config` and `private`;
// `healthcheck`). No module imports one above it (`layers` in the tests checks).
mod alerting;
mod backup;
mod backup_command;
mod config;
mod engine;
mod features;
mod front;
mod healthcheck;
#[cfg(test)]
mod layers;
mod private;
mod process;
mod request;
mod restore;
mod router;
mod selfmon;
mod server;
mod tls;

use std::process::ExitCode;

use clap::Parser;

use config::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Healthcheck(args)) => healthcheck::run(&args),
        Some(Command::Backup(args)) => backup_command::run(&args),
        Some(Command::Restore(args)) => restore::run(&args),
        None => server::main(cli.serve),
    }
}
