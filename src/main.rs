//! The `tessera` binary: argument parsing only; every command lives in `tessera::cli`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tessera::cli;

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "A GraphQL unified-API gateway over SaaS CRMs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve(cli::serve::ServeArgs),
    /// Run the gateway with the sandbox vendors, a demo environment and linked accounts.
    #[cfg(feature = "sandbox")]
    Demo(cli::demo::DemoArgs),
    /// Run only the sandbox vendors.
    #[cfg(feature = "sandbox")]
    Sandbox(cli::sandbox::SandboxArgs),
    /// Replay a scripted day against the sandbox, faults injected at known times, on a
    /// virtual clock: how fast each symptom is caught and what `diagnose` says.
    #[cfg(feature = "sandbox")]
    Simulate(cli::simulate::SimulateArgs),
    /// Validate the schema and every provider file.
    Check(cli::check::CheckArgs),
    /// Schema tools.
    Schema {
        #[command(subcommand)]
        command: SchemaCommand,
    },
    /// Evaluate a JSONata expression with the gateway's engine and limits.
    Map(cli::map::MapArgs),
    /// Stored secrets.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// The platform admin key.
    AdminKey {
        #[command(subcommand)]
        command: AdminKeyCommand,
    },
}

#[derive(Subcommand)]
enum AdminKeyCommand {
    /// Generate a new admin key, print it once, and revoke every other admin key.
    Rotate(cli::admin_key::AdminKeyArgs),
}

#[derive(Subcommand)]
enum SecretsCommand {
    /// Re-encrypt every stored secret from TESSERA_SECRET_KEY to TESSERA_NEW_SECRET_KEY.
    Rotate(cli::rotate::RotateArgs),
}

#[derive(Subcommand)]
enum SchemaCommand {
    /// Print the served SDL (identical to what introspection returns).
    Print {
        #[arg(long, default_value = "schema")]
        schema: PathBuf,
    },
    /// Print the JSON Schema of provider files (`providers/provider.schema.json`).
    Providers,
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: Result<(), Box<dyn std::error::Error>> = match cli.command {
        Command::Check(args) => return cli::check::run(&args),
        Command::Map(args) => return cli::map::run(&args),
        Command::Schema {
            command: SchemaCommand::Print { schema },
        } => (|| {
            let model = tessera::schema::load_dir(&schema)?;
            print!("{}", tessera::graphql::print_sdl(&model)?);
            Ok(())
        })(),
        Command::Schema {
            command: SchemaCommand::Providers,
        } => {
            print!("{}", tessera::config::provider_json_schema());
            Ok(())
        }
        Command::Secrets {
            command: SecretsCommand::Rotate(args),
        } => runtime()
            .map_err(Into::into)
            .and_then(|rt| rt.block_on(cli::rotate::run(args))),
        Command::AdminKey {
            command: AdminKeyCommand::Rotate(args),
        } => runtime()
            .map_err(Into::into)
            .and_then(|rt| rt.block_on(cli::admin_key::rotate(args))),
        Command::Serve(args) => {
            init_tracing();
            runtime()
                .map_err(Into::into)
                .and_then(|rt| rt.block_on(cli::serve::run(args)))
        }
        #[cfg(feature = "sandbox")]
        Command::Demo(args) => {
            init_tracing();
            runtime()
                .map_err(Into::into)
                .and_then(|rt| rt.block_on(cli::demo::run(args)))
        }
        #[cfg(feature = "sandbox")]
        Command::Sandbox(args) => {
            init_tracing();
            runtime()
                .map_err(Into::into)
                .and_then(|rt| rt.block_on(cli::sandbox::run(args)))
        }
        #[cfg(feature = "sandbox")]
        Command::Simulate(args) => runtime()
            .map_err(Into::into)
            .and_then(|rt| rt.block_on(cli::simulate::run(args))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
