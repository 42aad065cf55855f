//! Register a fresh random identity on a running server and print `<user_id> <token>`, for
//! scripts that need an authenticated caller (scripts/schemathesis.sh, load checks by hand).
//!
//! `cargo run -p aqm-server --example register_user -- http://127.0.0.1:8080`

use aqm_core::crypto::Identity;
use aqm_server::client::Client;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::args().nth(1).unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let mut rng = rand::rng();
    let identity = Identity::generate(&mut rng);
    let proof = identity.registration_proof(&mut rng)?;
    let token = Client::new(&base)?.register(identity.public(), &proof).await?;
    println!("{} {token}", identity.user_id());
    Ok(())
}
