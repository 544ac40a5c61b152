//! `sekisho egress` without the rest of the binary: the same flags and the same
//! [`sekisho_egress::run`], for benchmarking the egress proxy on its own.

use clap::Parser;

/// The egress proxy's flags, as `sekisho egress` takes them.
#[derive(Parser, Debug)]
#[command(name = "egress")]
struct Cli {
    #[command(flatten)]
    args: sekisho_egress::EgressArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match sekisho_egress::run(cli.args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("egress: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
