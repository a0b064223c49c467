//! `orderly queues list|pause|resume`: the queues from the shell, as `/v1/queues` shows and
//! changes them. A pause made here is recorded as paused by `cli`.

use anyhow::Context;
use orderly_service::Services;

use super::short_time;
use crate::app;
use crate::cli::QueuesCommand;
use crate::config::Config;

pub async fn run(command: QueuesCommand, config: &Config) -> anyhow::Result<()> {
    let store = app::open_store(config, "orderly queues").await?;
    store
        .migrate()
        .await
        .context("cannot migrate the database")?;
    let services = Services::new(store.clone(), None, config.service_settings());
    let names = match &command {
        QueuesCommand::List => orderly_queue::known_queues(),
        QueuesCommand::Pause { name } => {
            let paused = services.pause_queue(name, "cli").await?;
            if !paused.changed {
                println!("queue {name} was paused already");
            }
            vec![Services::known_queue(name)?]
        }
        QueuesCommand::Resume { name } => {
            let resumed = services.resume_queue(name, "cli").await?;
            if !resumed.changed {
                println!("queue {name} was not paused");
            }
            vec![Services::known_queue(name)?]
        }
    };
    let queue = store.queue();
    println!(
        "{:<10}  {:<8}  {:>9}  {:>9}  {:>7}  {:>9}  {:>10}  OLDEST DUE",
        "QUEUE", "STATE", "AVAILABLE", "SCHEDULED", "RUNNING", "DISCARDED", "DONE/MIN"
    );
    for name in names {
        let stats = queue.queue_stats(name).await?;
        println!(
            "{:<10}  {:<8}  {:>9}  {:>9}  {:>7}  {:>9}  {:>10}  {}",
            stats.name,
            if stats.paused.is_some() {
                "paused"
            } else {
                "running"
            },
            stats.available,
            stats.scheduled,
            stats.running,
            stats.discarded,
            stats.completed_last_minute,
            stats.oldest_due_at.map_or_else(|| "-".into(), short_time),
        );
    }
    store.close().await;
    Ok(())
}
