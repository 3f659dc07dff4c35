//! perch-admin: enrolls this machine with a Perch server and ships its metrics.
#![forbid(unsafe_code)]

mod agent;
mod cli;
mod client;
mod commands;
mod config;
mod qan;
mod services;

use std::process::ExitCode;

use clap::Parser;

use cli::{AddCommand, Cli, Command};
use commands::{Failure, Output};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let path = cli.config.clone().unwrap_or_else(config::default_path);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("perch-admin: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result: Result<Option<Output>, Failure> = runtime.block_on(async {
        match cli.command {
            Command::Config(args) => commands::config::run(*args, &path).await.map(Some),
            Command::Status => commands::status::run(&path).await.map(Some),
            Command::List => commands::exporters::list(&path).map(Some),
            Command::Add(add) => match *add {
                AddCommand::Exporter(args) => commands::exporters::add(args, &path).map(Some),
                AddCommand::Mysql(args) => {
                    commands::services::add(config::ServiceType::Mysql, args, &path)
                        .await
                        .map(Some)
                }
                AddCommand::Postgresql(args) => {
                    commands::services::add(config::ServiceType::Postgresql, args, &path)
                        .await
                        .map(Some)
                }
            },
            Command::Remove(args) => commands::services::remove(args, &path).map(Some),
            Command::Unregister(args) => commands::unregister::run(args, &path).await.map(Some),
            Command::Summary(args) => commands::summary::run(args, &path).await.map(Some),
            Command::Agent(args) => agent::run(args, &path).await.map(|()| None),
        }
    });
    match result {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(out)) => {
            if cli.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&out.json).unwrap_or_default()
                );
            } else {
                println!("{}", out.text);
            }
            ExitCode::from(out.code)
        }
        Err(f) => {
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"error": f.message, "exit_code": f.code})
                );
            }
            eprintln!("perch-admin: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
