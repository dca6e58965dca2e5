//! The `rampart` binary: `serve` (default), `migrate`, `export-schema`, and the client
//! commands `upload` and `scans watch`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use migration::{Migrator, MigratorTrait};
use rampart::config::{Config, LogFormat, Role};
use rampart::{app, db, App};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "rampart",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Options of `serve`, which runs when no command is given.
    #[command(flatten)]
    serve: Config,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve(Config),
    /// Apply, roll back or list database migrations.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
        #[command(flatten)]
        config: Config,
    },
    /// Fill an empty installation with demo orgs, targets and 90 days of scans.
    SeedDemo(Config),
    /// Upload a report to a server and follow its scan live.
    Upload(rampart::cli::upload::UploadArgs),
    /// Work with a server's scans (`watch ID` follows one live).
    Scans {
        #[command(subcommand)]
        command: rampart::cli::watch::ScansCommand,
    },
    /// Write schema/schema.graphql and schema/openapi.json from the schema the server serves.
    ExportSchema {
        /// Directory to write into.
        #[arg(long, default_value = "schema")]
        out: PathBuf,
    },
    /// Print the configuration reference (every `serve` flag and variable) as a Markdown table.
    ConfigReference {
        /// Instead, replace the generated part of this document (docs/operations.md).
        #[arg(long)]
        write: Option<PathBuf>,
    },
}

#[derive(Subcommand, Clone, Copy)]
enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Roll back the latest migrations.
    Down {
        /// How many to roll back.
        #[arg(short = 'n', long, default_value_t = 1, conflicts_with = "all")]
        steps: u32,
        /// Roll back every migration.
        #[arg(long)]
        all: bool,
    },
    /// List migrations and whether each is applied.
    Status,
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,aws=warn,hyper=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Pretty => builder.init(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(config)) => serve(config).await,
        Some(Command::Migrate { action, config }) => migrate(action, config).await,
        Some(Command::ExportSchema { out }) => export_schema(out),
        Some(Command::ConfigReference { write }) => config_reference(write),
        Some(Command::Upload(args)) => rampart::cli::upload::run(args).await,
        Some(Command::Scans { command }) => rampart::cli::watch::run(command).await,
        Some(Command::SeedDemo(config)) => seed_demo(config).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    init_logging(config.log_format);
    let app = App::build(config).await?;
    let base = format!("http://{}", app.local_addr());
    let state = app.state();
    tracing::info!(
        database = db::backend_name(&state.db),
        object_store = state.store.kind(),
        event_bus = state.bus.kind(),
        "backends ready"
    );
    print_banner(&base, state.config.role);
    app.run_until(app::shutdown_signal()).await
}

/// Where everything is, in one write; a closed or full stdout must not stop the server (a
/// `println!` on a closed pipe would panic), so write errors are ignored. A worker-only
/// process serves only its probes, so it names only those.
fn print_banner(base: &str, role: Role) {
    use std::io::Write as _;
    let version = env!("CARGO_PKG_VERSION");
    let banner = if role == Role::Worker {
        format!(
            "Rampart {version} worker listening on {base} (probes only)\n\
             \x20 Readiness          {base}/ready\n\
             \x20 Health             {base}/health/services\n",
        )
    } else {
        format!(
            "Rampart {version} listening on {base}\n\
             \x20 GraphQL endpoint   {base}/graphql\n\
             \x20 GraphiQL           {base}/graphql\n\
             \x20 Swagger UI         {base}/docs\n\
             \x20 OpenAPI document   {base}/openapi.json\n\
             \x20 Health             {base}/health/services\n",
        )
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(banner.as_bytes())
        .and_then(|()| stdout.flush());
}

async fn migrate(action: MigrateAction, config: Config) -> anyhow::Result<()> {
    init_logging(config.log_format);
    rampart::private_fs::prepare_data_dir(&config).await?;
    let conn = db::connect_with(
        &config.effective_database_url(),
        config.db_acquire_timeout(),
    )
    .await?;
    // Not while a starting server migrates.
    let lock = rampart::setup::SetupLock::acquire(&conn).await?;
    let done = match action {
        MigrateAction::Up => Migrator::up(&conn, None).await,
        MigrateAction::Down { all: true, .. } => Migrator::reset(&conn).await,
        MigrateAction::Down { steps, .. } => Migrator::down(&conn, Some(steps)).await,
        MigrateAction::Status => Ok(()),
    };
    lock.release().await;
    done?;
    for migration in Migrator::get_migration_with_status(&conn).await? {
        println!("{:?}\t{}", migration.status(), migration.name());
    }
    Ok(())
}

async fn seed_demo(config: Config) -> anyhow::Result<()> {
    init_logging(config.log_format);
    let backends = rampart::app::open_backends(&config).await?;
    // Not while a starting server sets the installation up.
    let lock = rampart::setup::SetupLock::acquire(&backends.db).await?;
    let seeded = seed_demo_locked(&config, &backends.db).await;
    lock.release().await;
    seeded
}

async fn seed_demo_locked(config: &Config, db: &sea_orm::DatabaseConnection) -> anyhow::Result<()> {
    app::announce_bootstrap(
        rampart::orgs::bootstrap_admin(
            db,
            config.admin_email.as_deref(),
            config.admin_password.as_deref(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("creating the first administrator: {}", e.public_message()))?,
    );
    if rampart::demo::seed(db)
        .await
        .map_err(|e| anyhow::anyhow!("seeding: {e:?}"))?
    {
        println!("demo data written: 3 orgs, 4 targets each, a scan a week for 90 days");
    } else {
        println!("targets exist already; nothing written");
    }
    Ok(())
}

fn config_reference(write: Option<PathBuf>) -> anyhow::Result<()> {
    use rampart::config::reference;
    match write {
        None => print!("{}", reference::markdown()),
        Some(path) => {
            let document = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let updated = reference::splice(&document)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            std::fs::write(&path, updated)
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!("updated the configuration reference in {}", path.display());
        }
    }
    Ok(())
}

fn export_schema(out: PathBuf) -> anyhow::Result<()> {
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let sdl = rampart::graphql::build_schema(None).sdl();
    let openapi = rampart::rest::api()?
        .openapi
        .to_pretty_json()
        .context("serialising the OpenAPI document")?;
    std::fs::write(out.join("schema.graphql"), sdl)?;
    std::fs::write(out.join("openapi.json"), openapi + "\n")?;
    println!(
        "wrote {}/schema.graphql and {}/openapi.json",
        out.display(),
        out.display()
    );
    Ok(())
}
