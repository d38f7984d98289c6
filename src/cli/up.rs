//! `veilgrid up`: the whole grid on one machine.

use std::{net::SocketAddr, path::PathBuf, process::Stdio, time::Duration};

use tokio::process::{Child, Command};

use crate::{
    Error,
    grid::{self, GridOptions},
};

#[derive(Debug, clap::Args)]
pub(crate) struct UpArgs {
    /// Where state (router store, provider identities) is kept.
    #[arg(long, env = "VEILGRID_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Where the router listens.
    #[arg(long, default_value = crate::DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Start each service as its own child process instead of in this one.
    #[arg(long)]
    separate: bool,
    /// Plaintext on every hop (http://), for debugging. Without it every hop runs
    /// mutual TLS with a Veilgrid CA and certificates kept under `<data dir>/tls`
    /// (created on first start; a `cli` client certificate is issued for the command
    /// line, which finds it there for the https:// router).
    #[arg(long)]
    insecure: bool,
    /// Mutual TLS (the default; kept so older scripts keep working).
    #[arg(long, hide = true, conflicts_with = "insecure")]
    tls: bool,
    /// Where the router, the aggregator, the prover and the FHE key registry keep their
    /// state: `sqlite:DIR`, or `postgres://user:password@host:port/database` (shared by
    /// replicas, each service in its own tables; TLS as libpq: add
    /// `?sslmode=verify-full&sslrootcert=CA.pem`); default: SQLite (FHE keys: files)
    /// under <data-dir>/<service>.
    #[arg(long, env = "VEILGRID_STORE", hide_env_values = true)]
    store: Option<String>,
}

pub(crate) async fn run(a: UpArgs) -> Result<(), Error> {
    let data_dir = a.data_dir.unwrap_or_else(super::default_data_dir);
    let _ = a.tls;
    let tls = (!a.insecure).then(|| data_dir.join("tls"));
    if let Some(dir) = &tls {
        grid::security_for(Some(dir.as_path()), "cli", veilgrid_kit::auth::Role::Client)?;
    }
    if a.separate {
        return run_separate(a.listen, data_dir, a.store, tls).await;
    }
    let g = grid::start(GridOptions {
        listen: a.listen,
        data_dir: Some(data_dir.clone()),
        committee: 5,
        tls: tls.clone(),
        router: veilgrid_router::RouterConfig {
            store: a.store.clone(),
            ..Default::default()
        },
        ..GridOptions::default()
    })
    .await?;
    grid::start_matching(
        &g.router_url,
        Some(&data_dir),
        "VG",
        g.shutdown.clone(),
        tls.as_deref(),
    )
    .await?;
    println!("veilgrid is up: router at {}", g.router_url);
    println!("  data directory: {}", data_dir.display());
    println!("  services: router, echo (veilgrid/echo/v1, veilgrid/echo/sealed/v1)");
    println!("  aggregation: veilgrid/agg/*, committee of 5 members (t = 2)");
    println!("  matching: three nodes (veilgrid/match/*), linked to each other directly");
    match &tls {
        Some(dir) => println!(
            "  mutual TLS: CA and certificates in {} (client certificate: cli)\n  try: veilgrid demo --router {} (commands find the CA under the data directory; elsewhere pass --tls-dir {})",
            dir.display(),
            g.router_url,
            dir.display()
        ),
        None => println!(
            "  PLAINTEXT (--insecure): no TLS on any hop\n  try: veilgrid demo --router {}",
            g.router_url
        ),
    }
    println!("Ctrl-C to stop.");
    super::interrupted().await;
    println!("stopping: releasing leases...");
    g.stop().await;
    println!("stopped.");
    Ok(())
}

/// Each service as a child process. Children get a pipe on standard input and
/// stop cleanly (releasing their leases) when it closes, so they never outlive us.
async fn run_separate(
    listen: SocketAddr,
    data_dir: PathBuf,
    store: Option<String>,
    tls: Option<PathBuf>,
) -> Result<(), Error> {
    let exe = std::env::current_exe().map_err(|source| Error::Io {
        path: "current executable".into(),
        source,
    })?;
    let router_url = match &tls {
        Some(_) => format!("https://{listen}"),
        None => format!("http://{listen}"),
    };
    // every child gets the TLS directory, with its certificate issued there first
    let mut tls_args: Vec<String> = Vec::new();
    if let Some(dir) = &tls {
        for name in [
            "router",
            "echo",
            "prover",
            "fhe",
            "aggregator",
            "agg-member",
        ] {
            grid::service_security(Some(dir.as_path()), name)?;
        }
        tls_args = vec!["--tls-dir".into(), dir.display().to_string()];
    }
    let spawn = |args: Vec<String>| -> Result<Child, Error> {
        Command::new(&exe)
            .args(&args)
            .args(&tls_args)
            // Through the environment, not argv: a PostgreSQL URL may hold a password.
            .envs(store.iter().map(|s| ("VEILGRID_STORE", s)))
            .stdin(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| Error::Io {
                path: exe.display().to_string(),
                source,
            })
    };
    let dd = data_dir.display().to_string();
    let mut children = vec![spawn(vec![
        "serve".into(),
        "router".into(),
        "--listen".into(),
        listen.to_string(),
        "--data-dir".into(),
        dd.clone(),
        "--stop-on-stdin-eof".into(),
    ])?];
    children.push(spawn(vec![
        "serve".into(),
        "echo".into(),
        "--router".into(),
        router_url.clone(),
        "--data-dir".into(),
        dd.clone(),
        "--stop-on-stdin-eof".into(),
    ])?);
    // The prover (audit log), FHE inference and the aggregation server, each its own process;
    // then a committee of 5, each member with its own identity.
    for service in ["prover", "fhe", "aggregator"] {
        children.push(spawn(vec![
            "serve".into(),
            service.into(),
            "--router".into(),
            router_url.clone(),
            "--data-dir".into(),
            dd.clone(),
            "--stop-on-stdin-eof".into(),
        ])?);
    }
    for i in 0..5 {
        children.push(spawn(vec![
            "serve".into(),
            "committee-member".into(),
            "--router".into(),
            router_url.clone(),
            "--data-dir".into(),
            data_dir
                .join(format!("agg-member-{i}"))
                .display()
                .to_string(),
            "--stop-on-stdin-eof".into(),
        ])?);
    }
    println!("veilgrid is up (separate processes): router at {router_url}");
    if let Some(dir) = &tls {
        println!("  mutual TLS: CA and certificates in {}", dir.display());
    }
    for c in &children {
        println!("  child pid {}", c.id().unwrap_or(0));
    }
    println!("Ctrl-C to stop.");
    super::interrupted().await;
    println!("stopping children...");
    for c in &mut children {
        drop(c.stdin.take());
    }
    for mut c in children {
        if tokio::time::timeout(Duration::from_secs(5), c.wait())
            .await
            .is_err()
        {
            let _ = c.kill().await;
        }
    }
    println!("stopped.");
    Ok(())
}
