//! The `easel` binary: parse the command line and hand over to the library.

use clap::Parser;

/// Exit status for a command line that could not be understood (BSD's EX_USAGE), kept apart
/// from `generate`'s 1 (nothing saved) and 2 (some images saved).
const USAGE_ERROR: i32 = 64;

fn main() {
    let _ = easel::studio::runtime::PROCESS_START.set(std::time::Instant::now());
    let cli = match easel::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // The error quotes what was typed: cleaned like any outside text before it reaches
            // the terminal.
            eprint!("{}", easel::sanitize::text(&e.render().to_string()));
            std::process::exit(USAGE_ERROR);
        }
        Err(e) => {
            // --help and --version.
            let _ = e.print();
            std::process::exit(0);
        }
    };
    if cli.command.is_some() {
        // Headless commands die quietly on a closed pipe (`easel history list | head`), as
        // Unix tools do, instead of failing on the write. The studio keeps Rust's default so that
        // it can restore the terminal and record running jobs on the way out.
        // SAFETY: setting a signal's disposition to the default, before any thread is started.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
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
