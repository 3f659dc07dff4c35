//! perch-server: the Perch appliance.
#![forbid(unsafe_code)]

// Layers, from the bottom: the leaves (`body`, `clock`, `store`, `selfmon`, `tls`); the
// services (`auth`, `upstream`, then `engine`); the request layer every handler shares
// (`request`); the features (`features`); the `router`; the connection stack (`front`);
// start-up (`server`, `config`, `healthcheck`). No module imports one above it.
mod auth;
mod body;
mod clock;
mod config;
mod engine;
mod features;
mod front;
mod healthcheck;
mod request;
mod router;
mod selfmon;
mod server;
mod store;
mod tls;
mod upstream;

use std::process::ExitCode;

use clap::Parser;

use config::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Healthcheck(args)) => healthcheck::run(&args),
        None => server::main(cli.serve),
    }
}
