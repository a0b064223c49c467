//! `orderly keys create|list|revoke`.

use anyhow::{Context, bail};
use orderly_service::{KeyError, Services};

use super::short_time;
use crate::app;
use crate::cli::KeysCommand;
use crate::config::Config;

pub async fn run(command: KeysCommand, config: &Config) -> anyhow::Result<()> {
    let store = app::open_store(config, "orderly keys").await?;
    store
        .migrate()
        .await
        .context("cannot migrate the database")?;
    let services = Services::new(store.clone(), None, config.service_settings());
    match command {
        KeysCommand::Create { role, name } => {
            let (_, secret) = match services.create_api_key(&name, role).await {
                Ok(created) => created,
                Err(KeyError::BadName(message)) => bail!("--name {message}"),
                Err(KeyError::Store(e)) => return Err(e.into()),
            };
            println!("{secret}");
        }
        KeysCommand::List => {
            println!(
                "{:<36}  {:<12}  {:<10}  {:<20}  {:<20}  NAME",
                "ID", "PREFIX", "ROLE", "CREATED", "REVOKED"
            );
            for key in services.list_api_keys().await? {
                println!(
                    "{:<36}  {:<12}  {:<10}  {:<20}  {:<20}  {}",
                    key.id,
                    key.prefix,
                    key.role,
                    short_time(key.created_at),
                    key.revoked_at.map_or_else(|| "-".to_owned(), short_time),
                    key.name
                );
            }
        }
        KeysCommand::Revoke { id } => {
            if !services.revoke_api_key(id).await? {
                bail!("no live key has id {id}");
            }
            println!("revoked {id}");
        }
    }
    store.close().await;
    Ok(())
}
