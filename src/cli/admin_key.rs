//! `tessera admin-key rotate`: a new platform admin key replaces every other one. The new
//! key is printed once; only its hash is stored. Replicas need no restart (keys are looked
//! up per request). Where `TESSERA_ADMIN_KEY` is set, change the variable instead: on its
//! next start `serve` makes that key the only admin key.

use crate::store::Store;

#[derive(clap::Args, Debug, Clone)]
pub struct AdminKeyArgs {
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://data/tessera.db?mode=rwc"
    )]
    pub database_url: String,
}

pub async fn rotate(args: AdminKeyArgs) -> Result<(), Box<dyn std::error::Error>> {
    let store = Store::connect(&args.database_url).await?;
    let key = crate::access::keys::rotate_admin_key(&store).await?;
    println!("New admin key (shown once; every earlier admin key is revoked):");
    println!("{}", key.expose());
    Ok(())
}
