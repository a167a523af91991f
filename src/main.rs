//! The `easel` binary: parse the command line and hand over to the library.

use clap::Parser;

fn main() {
    let cli = easel::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("easel: could not start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(easel::cli::run(cli));
    // Do not wait for stray blocking work (a preview decode, say) once the answer is out.
    runtime.shutdown_background();
    std::process::exit(code);
}
