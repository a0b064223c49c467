//! `orderly keys create|list|revoke`.

use anyhow::{Context, bail};
use orderly_domain::validation::{check_length, check_text};
use orderly_storage::NewApiKey;

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
    match command {
        KeysCommand::Create { role, name } => {
            if let Err(e) = check_length("name", &name, 1, 100).and(check_text("name", &name, &[]))
            {
                bail!("--name {}", e.message);
            }
            let (info, secret) = store.create_api_key(&NewApiKey { name, role }).await?;
            tracing::info!(key_id = %info.id, prefix = %info.prefix, %role, "API key created");
            println!("{secret}");
        }
        KeysCommand::List => {
            println!(
                "{:<36}  {:<12}  {:<10}  {:<20}  {:<20}  NAME",
                "ID", "PREFIX", "ROLE", "CREATED", "REVOKED"
            );
            for key in store.list_api_keys().await? {
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
            if !store.revoke_api_key(id).await? {
                bail!("no live key has id {id}");
            }
            tracing::info!(key_id = %id, "API key revoked");
            println!("revoked {id}");
        }
    }
    store.close().await;
    Ok(())
}
