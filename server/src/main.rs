//! perch-server: the Perch appliance.
#![forbid(unsafe_code)]

mod auth;
mod config;
mod gateway;
mod healthcheck;
mod http;
mod metrics;
mod proxy;
mod selfmon;
mod server;
mod store;
mod tls;
mod web;

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
