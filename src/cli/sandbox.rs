//! `tessera sandbox`: only the vendor imitations, for trying a provider file by hand.

use std::net::SocketAddr;

#[derive(clap::Args, Debug, Clone)]
pub struct SandboxArgs {
    #[arg(long, default_value = "127.0.0.1:4010")]
    pub listen: SocketAddr,
}

/// Serves until ctrl-c.
pub async fn run(args: SandboxArgs) -> Result<(), Box<dyn std::error::Error>> {
    println!(
        "Sandbox vendors on http://{} (control: /_control/stats)",
        args.listen
    );
    tessera_sandbox::serve(args.listen)
        .await
        .map_err(Into::into)
}
