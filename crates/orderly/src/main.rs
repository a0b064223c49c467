//! The `orderly` binary: parses the command line and configuration, installs logging, and
//! hands over to the library.

use std::process::ExitCode;

use clap::Parser;
use orderly::cli::{Cli, Command};
use orderly::config::Config;
use orderly::telemetry::{self, LogTarget};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("orderly: {e}");
            return ExitCode::from(2);
        }
    };
    let target = match &cli.command {
        Command::Run(args) | Command::Api(args) | Command::Worker(args) => {
            if args.no_migrate {
                config.database.migrate_on_start = false;
            }
            LogTarget::Stdout
        }
        Command::Bench(_) => {
            // A benchmark measures the work, not the logging of it.
            config.log.filter = "warn".into();
            LogTarget::Stderr
        }
        Command::Healthcheck { .. } => {
            // Runs every few seconds: says what is wrong on stderr, exports no traces.
            config.log.filter = "warn".into();
            config.telemetry.otlp_endpoint.clear();
            LogTarget::Stderr
        }
        _ => LogTarget::Stderr,
    };
    orderly::install_crypto_provider();
    let _telemetry = telemetry::init(&config.log, &config.telemetry, target);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("orderly: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(orderly::commands::run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "orderly stopped with an error");
            eprintln!("orderly: {e:#}");
            ExitCode::FAILURE
        }
    }
}
