//! `rampart scans watch ID`: follow a scan that is already on the server.

use clap::{Args, Subcommand};

use super::follow::{follow, Server, ServerArgs};

/// `rampart scans …`.
#[derive(Debug, Subcommand)]
pub enum ScansCommand {
    /// Follow a scan live until it finishes, then print its summary.
    Watch(WatchArgs),
}

/// Options of `rampart scans watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The scan's id.
    pub id: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Runs a `scans` command.
///
/// # Errors
/// When the scan cannot be followed, or ends failed or cancelled.
pub async fn run(command: ScansCommand) -> anyhow::Result<()> {
    match command {
        ScansCommand::Watch(args) => follow(&Server::new(&args.server)?, &args.id).await,
    }
}
