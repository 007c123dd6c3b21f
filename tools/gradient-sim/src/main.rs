//! `gradient-sim --port P --vendor-key K [--max-rps N] [--seed S]`
//!
//! Prints `gradient-sim listening on http://127.0.0.1:P` once ready; exits on ctrl-c or SIGTERM.

use gradient_sim::{SimConfig, Simulator};

const USAGE: &str = "usage: gradient-sim --port P --vendor-key K [--max-rps N] [--seed S]";

fn parse_args() -> Result<SimConfig, String> {
    let mut config = SimConfig::default();
    let mut vendor_key = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.to_owned());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let bad = |_| format!("invalid value for {flag}\n{USAGE}");
        match flag.as_str() {
            "--port" => config.port = value.parse().map_err(bad)?,
            "--vendor-key" => vendor_key = Some(value),
            "--max-rps" => config.max_rps = value.parse().map_err(bad)?,
            "--seed" => config.seed = value.parse().map_err(bad)?,
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    config.vendor_key = vendor_key.ok_or_else(|| format!("--vendor-key is required\n{USAGE}"))?;
    if config.vendor_key.is_empty() {
        return Err(format!("--vendor-key must not be empty\n{USAGE}"));
    }
    Ok(config)
}

async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() {
    let config = match parse_args() {
        Ok(c) => c,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let sim = match Simulator::start(config).await {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("gradient-sim: cannot bind: {e}");
            std::process::exit(1);
        }
    };
    println!("gradient-sim listening on {}", sim.base_url());
    terminated().await;
    sim.shutdown().await;
}
