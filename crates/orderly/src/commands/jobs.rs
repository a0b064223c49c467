//! `orderly jobs list|show|retry|cancel`: the operators' view of the queue from the shell.

use anyhow::{Context, bail};
use orderly_domain::PageLimit;
use orderly_queue::{Job, JobFilter};
use orderly_service::{JobAction, Services};

use super::short_time;
use crate::app;
use crate::cli::JobsCommand;
use crate::config::Config;

pub async fn run(command: JobsCommand, config: &Config) -> anyhow::Result<()> {
    let store = app::open_store(config, "orderly jobs").await?;
    let services = Services::new(store.clone(), None, config.service_settings());
    store
        .migrate()
        .await
        .context("cannot migrate the database")?;
    match command {
        JobsCommand::List {
            state,
            kind,
            queue,
            limit,
        } => {
            let filter = JobFilter {
                state: state
                    .map(|s| s.parse())
                    .transpose()
                    .map_err(anyhow::Error::msg)?,
                kind,
                queue,
                error_contains: None,
                before: None,
                limit: PageLimit::parse(limit)
                    .map_err(|e| anyhow::anyhow!("--limit {}", e.message))?,
            };
            println!(
                "{:>8}  {:<10}  {:<14}  {:<10}  {:>7}  {:<20}  LAST ERROR",
                "ID", "QUEUE", "KIND", "STATE", "ATTEMPT", "RUN AT"
            );
            for job in services.list_jobs(&filter).await? {
                println!(
                    "{:>8}  {:<10}  {:<14}  {:<10}  {:>3}/{:<3}  {:<20}  {}",
                    job.id,
                    job.queue,
                    job.kind,
                    job.state,
                    job.attempt,
                    job.max_attempts,
                    short_time(job.run_at),
                    job.last_error.as_deref().unwrap_or("-")
                );
            }
        }
        JobsCommand::Show { id } => match services.job(id).await? {
            Some(job) => print_job(&job),
            None => bail!("no job has id {id}"),
        },
        JobsCommand::Retry { id } => print_job(&services.act_on_job(id, JobAction::Retry).await?),
        JobsCommand::Cancel { id } => print_job(&services.act_on_job(id, JobAction::Cancel).await?),
    }
    store.close().await;
    Ok(())
}

fn print_job(job: &Job) {
    println!("id:           {}", job.id);
    println!("queue:        {}", job.queue);
    println!("kind:         {}", job.kind);
    println!("state:        {}", job.state);
    println!("attempt:      {}/{}", job.attempt, job.max_attempts);
    println!("run at:       {}", short_time(job.run_at));
    println!("args:         {}", job.args);
    println!("last error:   {}", job.last_error.as_deref().unwrap_or("-"));
    if let Some(asked) = job.cancel_requested_at {
        println!(
            "cancel asked: {} (its worker stops it; it ends cancelled, or completed if its work was done)",
            short_time(asked)
        );
    }
}
