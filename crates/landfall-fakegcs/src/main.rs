//! `landfall-fakegcs` — TEST FIXTURE server speaking the subset of the GCS
//! XML/JSON APIs that object_store's GCS backend uses. Not a GCS emulator.
//! See the library docs for details and for how to point object_store at it.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use landfall_fakegcs::{Config, FakeGcs};

const USAGE: &str = "\
landfall-fakegcs: TEST FIXTURE implementing the subset of the GCS XML/JSON APIs
used by object_store's GCS backend (not a GCS emulator). Binds 127.0.0.1 only;
accepts any credentials.

USAGE:
    landfall-fakegcs [--port PORT] [--bucket NAME]... [--root DIR]
                     [--min-part-size BYTES] [--versioning] [--verbose]

OPTIONS:
    --port PORT             TCP port on 127.0.0.1 (default 4443; 0 = ephemeral)
    --bucket NAME           pre-create a bucket (repeatable; others are
                            created on first use anyway)
    --root DIR              persist objects under DIR (default: memory only)
    --min-part-size BYTES   minimum size of non-final multipart parts
                            (default 5242880, like GCS)
    --versioning            keep overwritten/deleted generations readable
                            with ?generation= (memory only)
    --verbose               log each request to stderr
    -h, --help              show this help

Prints `listening on http://127.0.0.1:PORT` on stdout once bound.
Use with object_store: GoogleCloudStorageBuilder::new().with_bucket_name(NAME)
    .with_base_url(\"http://127.0.0.1:PORT\").with_bearer_token(\"fake\")
";

fn parse_args() -> Result<(u16, Config), String> {
    let mut port = 4443u16;
    let mut config = Config::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            "--port" => {
                let v = value("--port")?;
                port = v.parse().map_err(|_| format!("invalid --port {v:?}"))?;
            }
            "--bucket" => config.buckets.push(value("--bucket")?),
            "--root" => config.root = Some(PathBuf::from(value("--root")?)),
            "--min-part-size" => {
                let v = value("--min-part-size")?;
                config.min_part_size = v
                    .parse()
                    .map_err(|_| format!("invalid --min-part-size {v:?}"))?;
            }
            "--versioning" => config.versioning = true,
            "--verbose" | "-v" => config.log_requests = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok((port, config))
}

#[tokio::main]
async fn main() -> ExitCode {
    let (port, config) = match parse_args() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("landfall-fakegcs: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let server = match FakeGcs::new(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("landfall-fakegcs: cannot initialise storage: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("landfall-fakegcs: cannot bind 127.0.0.1:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("landfall-fakegcs: {e}");
            return ExitCode::FAILURE;
        }
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on http://{addr}");
        let _ = out.flush();
    }
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match axum::serve(listener, server.router())
        .with_graceful_shutdown(shutdown)
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("landfall-fakegcs: server error: {e}");
            ExitCode::FAILURE
        }
    }
}
