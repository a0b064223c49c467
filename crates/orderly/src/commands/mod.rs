//! What each subcommand does, once arguments and configuration are parsed.

mod healthcheck;
mod jobs;
mod keys;
mod orders;
mod queues;

use std::io::IsTerminal;

use anyhow::Context;
use orderly_service::Services;

use crate::app::{self, Application, Roles};
use crate::cli::Command;
use crate::config::Config;

/// Runs one command to completion.
pub async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Run(_) => serve(config, Roles::ALL).await,
        Command::Api(_) => serve(config, Roles::API).await,
        Command::Worker(_) => serve(config, Roles::WORKER).await,
        Command::Jobs(command) => jobs::run(command, &config).await,
        Command::Queues(command) => queues::run(command, &config).await,
        Command::Orders(command) => orders::run(command, &config).await,
        Command::Migrate => migrate(&config).await,
        Command::Keys(command) => keys::run(command, &config).await,
        Command::Bench(command) => crate::bench::run(command, &config).await,
        Command::Healthcheck { timeout } => healthcheck::run(&config, timeout).await,
        Command::Config { reference: false } => {
            print!("{}", config.to_redacted_toml());
            Ok(())
        }
        Command::Config { reference: true } => {
            print!("{}", crate::config::reference());
            Ok(())
        }
    }
}

async fn serve(config: Config, roles: Roles) -> anyhow::Result<()> {
    let shutdown = crate::servers::shutdown_on_signals();
    let application = Application::build(&config, roles).await?;
    if roles == Roles::ALL {
        create_first_admin_key(application.services()).await?;
    }
    application.serve(shutdown).await?;
    Ok(())
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    let store = app::open_store(config, "orderly migrate").await?;
    store
        .migrate()
        .await
        .context("cannot migrate the database")?;
    tracing::info!(backend = store.kind().as_str(), "migrations applied");
    store.close().await;
    Ok(())
}

/// On a database that has never had a key, makes an admin key and prints it once to stderr
/// (not to the log stream), so a newcomer can follow the README without another step.
async fn create_first_admin_key(services: &Services) -> anyhow::Result<()> {
    let Some((_, secret)) = services.first_admin_key().await? else {
        return Ok(());
    };
    let rule = "-".repeat(72);
    let hint = if std::io::stderr().is_terminal() {
        ""
    } else {
        " (stderr is not a terminal: store this key safely)"
    };
    eprintln!(
        "{rule}\nNo API keys existed, so an admin key was created{hint}.\n\
         It is shown only this once:\n\n    {secret}\n\n\
         Use it as `Authorization: Bearer <key>`. Manage keys with `orderly keys`.\n{rule}"
    );
    Ok(())
}

/// A timestamp as operators read it in tables: `2026-11-28 03:04:05` (UTC).
pub(crate) fn short_time(t: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    t.format(&format).unwrap_or_else(|_| t.to_string())
}
