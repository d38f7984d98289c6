//! `veilgrid fhe ...`: encrypted inference (issue 3). Keys are made and kept on this machine;
//! only the evaluation key and ciphertexts go through the router.
//!
//! A key directory (`fhe keygen --out DIR`) holds `client.key` (the secret key, mode 0600, never
//! read by any command that sends anything but ciphertexts), `server.key` (the compressed
//! evaluation key, uploaded by `fhe register`) and `key_id` (hex SHA-256 of `server.key`).

use std::{
    io::Write,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use bytes::Bytes;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use veilgrid_fhe::{
    ClientKey, FheModel, KeyId, builtin_model, dataset::BreastCancer, evaluate_batch,
    generate_keys, model::builtin_float_model,
};
use veilgrid_fhe_service::client::FheClient;

use super::RouterArg;
use crate::Error;

/// File names inside a key directory.
pub(crate) const CLIENT_KEY_FILE: &str = "client.key";
/// The compressed evaluation key.
pub(crate) const SERVER_KEY_FILE: &str = "server.key";
/// Hex key id.
pub(crate) const KEY_ID_FILE: &str = "key_id";

#[derive(Debug, clap::Args)]
pub(crate) struct FheArgs {
    #[command(subcommand)]
    command: FheCommand,
}

#[derive(Debug, Subcommand)]
enum FheCommand {
    /// Generate a client key and its evaluation key into DIR (the client key never leaves it).
    Keygen(KeygenArgs),
    /// Upload the evaluation key of DIR to the FHE service (in 1 MiB chunks).
    Register(RegisterArgs),
    /// The models the FHE service serves, with their input schema.
    Models(ModelsArgs),
    /// Encrypt rows locally, have them evaluated through the router, decrypt locally.
    Query(QueryArgs),
    /// Every held-out test row: encrypted prediction vs the plaintext model, and accuracy.
    Eval(EvalArgs),
}

#[derive(Debug, clap::Args)]
struct KeygenArgs {
    /// The key directory to create.
    #[arg(long)]
    out: PathBuf,
    /// Overwrite keys already in DIR.
    #[arg(long)]
    force: bool,
    /// Print a JSON summary.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct RegisterArgs {
    #[command(flatten)]
    router: RouterArg,
    /// The key directory (`fhe keygen --out`).
    #[arg(long)]
    keys: PathBuf,
    /// Print a JSON summary.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct ModelsArgs {
    #[command(flatten)]
    router: RouterArg,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("rows").required(true).args(["input", "csv"])))]
struct QueryArgs {
    #[command(flatten)]
    router: RouterArg,
    /// The key directory (`fhe keygen --out`, registered with `fhe register`).
    #[arg(long)]
    keys: PathBuf,
    /// Model name (`fhe models`).
    #[arg(long)]
    model: String,
    /// One row of raw feature values, comma-separated, as in the dataset.
    #[arg(long, allow_hyphen_values = true)]
    input: Option<String>,
    /// A CSV file of rows of raw feature values (a header line and a trailing label column,
    /// as in the dataset's file, are skipped).
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Send all rows in one batch request (evaluated in parallel) instead of one by one.
    #[arg(long)]
    batch: bool,
    /// Print a JSON array, one object per row: `prediction` (class index as in the dataset's
    /// labels), `class`, `score`, `latency_ms`.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct EvalArgs {
    /// Model name.
    #[arg(long)]
    model: String,
    /// Evaluate through the router with the registered keys of DIR; without it, keys are made
    /// in memory and evaluation runs in this process.
    #[arg(long)]
    keys: Option<PathBuf>,
    #[command(flatten)]
    router: RouterArg,
    /// Only the first N test rows.
    #[arg(long)]
    limit: Option<usize>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(a: FheArgs) -> Result<(), Error> {
    match a.command {
        FheCommand::Keygen(a) => keygen(a).await,
        FheCommand::Register(a) => register(a).await,
        FheCommand::Models(a) => models(a).await,
        FheCommand::Query(a) => query(a).await,
        FheCommand::Eval(a) => eval(a).await,
    }
}

fn fhe_err(e: impl std::fmt::Display) -> Error {
    Error::Service(e.to_string())
}

fn remote(e: veilgrid_fhe_service::FheServiceError) -> Error {
    match e {
        veilgrid_fhe_service::FheServiceError::Remote { what, status } => Error::rpc(what, status),
        other => fhe_err(other),
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

fn spinner(msg: &str) -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    pb.set_message(msg.to_owned());
    pb.enable_steady_tick(Duration::from_millis(100));
    pb
}

/// Write `bytes` to `path`, created with owner-only permissions (0600) before any byte is written.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io(path))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // An existing file keeps its mode on open: tighten it.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io(path))?;
    }
    f.write_all(bytes).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

/// Make keys in memory: (client key, serialized compressed evaluation key, its id).
pub(crate) fn make_keys() -> Result<(ClientKey, Bytes, KeyId), Error> {
    let (client, compressed) = generate_keys().map_err(fhe_err)?;
    let bytes = compressed.to_bytes().map_err(fhe_err)?;
    Ok((client, bytes.into(), compressed.id()))
}

async fn keygen(a: KeygenArgs) -> Result<(), Error> {
    let dir = a.out;
    if dir.join(CLIENT_KEY_FILE).exists() && !a.force {
        return Err(Error::Service(format!(
            "{} already holds keys; pass --force to replace them",
            dir.display()
        )));
    }
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(io(&dir))?;
    }
    let pb = spinner("generating TFHE keys (client key + compressed evaluation key)");
    let t = Instant::now();
    let made = tokio::task::spawn_blocking(|| -> Result<_, Error> {
        let (client, server, id) = make_keys()?;
        let client_bytes = client.to_bytes().map_err(fhe_err)?;
        Ok((client_bytes, server, id))
    })
    .await
    .map_err(fhe_err)??;
    pb.finish_and_clear();
    let (client_bytes, server, id) = made;
    write_private(&dir.join(CLIENT_KEY_FILE), &client_bytes)?;
    let sk = dir.join(SERVER_KEY_FILE);
    std::fs::write(&sk, &server).map_err(io(&sk))?;
    let idf = dir.join(KEY_ID_FILE);
    std::fs::write(&idf, format!("{}\n", id.to_hex())).map_err(io(&idf))?;
    let secs = t.elapsed().as_secs_f64();
    if a.json {
        println!(
            "{}",
            json!({
                "key_id": id.to_hex(),
                "dir": dir.display().to_string(),
                "client_key_bytes": client_bytes.len(),
                "server_key_bytes": server.len(),
                "parameter_set": veilgrid_fhe::params::PARAMETER_SET_NAME,
                "seconds": secs,
            })
        );
    } else {
        println!("key id {}", id.to_hex());
        println!(
            "  {}/{CLIENT_KEY_FILE}: client key, {} bytes, owner-only (keep it here)",
            dir.display(),
            client_bytes.len()
        );
        println!(
            "  {}/{SERVER_KEY_FILE}: compressed evaluation key, {:.1} MB (upload with `veilgrid fhe register --keys {}`)",
            dir.display(),
            server.len() as f64 / 1e6,
            dir.display()
        );
        println!("  {secs:.1} s");
    }
    Ok(())
}

/// The evaluation key of a key directory and its id (checked against `key_id`).
pub(crate) fn load_server_key(dir: &Path) -> Result<(KeyId, Bytes), Error> {
    let p = dir.join(SERVER_KEY_FILE);
    let len = std::fs::metadata(&p).map_err(io(&p))?.len();
    if len > veilgrid_fhe::params::MAX_COMPRESSED_SERVER_KEY_BYTES as u64 {
        return Err(Error::Service(format!(
            "{} is {len} bytes, over the service's limit of {} bytes",
            p.display(),
            veilgrid_fhe::params::MAX_COMPRESSED_SERVER_KEY_BYTES
        )));
    }
    let bytes = Bytes::from(std::fs::read(&p).map_err(io(&p))?);
    let id = KeyId::of(&bytes);
    let idf = dir.join(KEY_ID_FILE);
    if let Ok(s) = std::fs::read_to_string(&idf)
        && s.trim() != id.to_hex()
    {
        return Err(Error::Service(format!(
            "{} does not hash to the id in {} (corrupted key directory?)",
            p.display(),
            idf.display()
        )));
    }
    Ok((id, bytes))
}

/// The client key of a key directory.
pub(crate) fn load_client_key(dir: &Path) -> Result<ClientKey, Error> {
    let p = dir.join(CLIENT_KEY_FILE);
    let len = std::fs::metadata(&p).map_err(io(&p))?.len();
    if len > veilgrid_fhe::params::MAX_CLIENT_KEY_BYTES as u64 {
        return Err(Error::Service(format!("{} is too large", p.display())));
    }
    let bytes = zeroize::Zeroizing::new(std::fs::read(&p).map_err(io(&p))?);
    ClientKey::from_bytes(&bytes).map_err(fhe_err)
}

async fn register(a: RegisterArgs) -> Result<(), Error> {
    let (id, bytes) = load_server_key(&a.keys)?;
    let mut c =
        FheClient::via_router_secure(&a.router.router, &a.router.security()?).map_err(remote)?;
    let pb = ProgressBar::new(bytes.len() as u64);
    pb.set_style(
        ProgressStyle::with_template(
            "uploading {bar:40} {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let t = Instant::now();
    let bar = pb.clone();
    let r = c
        .register_key(id, bytes, move |n| bar.set_position(n))
        .await
        .map_err(remote);
    pb.finish_and_clear();
    let r = r?;
    let secs = t.elapsed().as_secs_f64();
    if a.json {
        println!(
            "{}",
            json!({
                "key_id": hex::encode(&r.key_id),
                "stored_bytes": r.stored_bytes,
                "already_registered": r.already_registered,
                "parameter_set": r.parameter_set,
                "seconds": secs,
            })
        );
    } else {
        println!(
            "key {} {} ({} bytes, {secs:.1} s; parameters {})",
            hex::encode(&r.key_id),
            if r.already_registered {
                "was already registered"
            } else {
                "registered"
            },
            r.stored_bytes,
            r.parameter_set
        );
    }
    Ok(())
}

async fn models(a: ModelsArgs) -> Result<(), Error> {
    let mut c =
        FheClient::via_router_secure(&a.router.router, &a.router.security()?).map_err(remote)?;
    let list = c.list_models().await.map_err(remote)?.models;
    if a.json {
        let v: Vec<_> = list
            .iter()
            .map(|m| {
                json!({
                    "name": m.name,
                    "kind": m.kind,
                    "n_inputs": m.n_inputs,
                    "classes": m.classes,
                    "inputs": m.inputs.iter().map(|f| json!({"name": f.name, "min": f.min, "max": f.max})).collect::<Vec<_>>(),
                    "input_bits": m.input_bits,
                    "bootstraps_per_inference": m.bootstraps_per_inference,
                    "parameter_set": m.parameter_set,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        for m in &list {
            println!(
                "{}: {}, {} inputs ({}-bit), classes {:?}, {} bootstraps per inference",
                m.name, m.kind, m.n_inputs, m.input_bits, m.classes, m.bootstraps_per_inference
            );
        }
    }
    Ok(())
}

fn parse_row(line: &str, n: usize, what: &str) -> Result<Option<Vec<f64>>, Error> {
    let cells: Vec<&str> = line.split(',').map(str::trim).collect();
    if cells.iter().all(|c| c.is_empty()) {
        return Ok(None);
    }
    let values: Result<Vec<f64>, _> = cells.iter().map(|c| c.parse::<f64>()).collect();
    let mut values =
        values.map_err(|_| Error::Service(format!("{what}: not a list of numbers: {line:?}")))?;
    if values.len() == n + 1 {
        values.pop(); // a trailing label column, as in the dataset's file
    }
    if values.len() != n {
        return Err(Error::Service(format!(
            "{what}: {} values, the model expects {n}",
            values.len()
        )));
    }
    Ok(Some(values))
}

/// Rows of raw values from `--input` or `--csv` (a first line that is not numbers is a header).
fn read_rows(a: &QueryArgs, n: usize) -> Result<Vec<Vec<f64>>, Error> {
    if let Some(s) = &a.input {
        return Ok(parse_row(s, n, "--input")?.into_iter().collect());
    }
    let Some(p) = &a.csv else {
        return Err(Error::Service("give --input or --csv".into()));
    };
    let text = std::fs::read_to_string(p).map_err(io(p))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let what = format!("{} line {}", p.display(), i + 1);
        match parse_row(line, n, &what) {
            Ok(Some(r)) => rows.push(r),
            Ok(None) => {}
            Err(_) if i == 0 => {} // header
            Err(e) => return Err(e),
        }
    }
    if rows.is_empty() {
        return Err(Error::Service(format!("{}: no rows", p.display())));
    }
    Ok(rows)
}

async fn query(a: QueryArgs) -> Result<(), Error> {
    let model = FheModel::compile(builtin_model(&a.model).map_err(fhe_err)?).map_err(fhe_err)?;
    let rows = read_rows(&a, model.model().n_features())?;
    let key = load_client_key(&a.keys)?;
    let mut c =
        FheClient::via_router_secure(&a.router.router, &a.router.security()?).map_err(remote)?;
    let results = if a.batch {
        c.predict_batch(&key, &model, &rows).await.map_err(remote)?
    } else {
        let pb = (rows.len() > 1).then(|| ProgressBar::new(rows.len() as u64));
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(c.predict(&key, &model, row).await.map_err(remote)?);
            if let Some(pb) = &pb {
                pb.inc(1);
            }
        }
        if let Some(pb) = pb {
            pb.finish_and_clear();
        }
        out
    };
    let classes = &model.model().classes;
    if a.json {
        let v: Vec<_> = results
            .iter()
            .enumerate()
            .map(|(i, r)| {
                json!({
                    "row": i,
                    "prediction": r.prediction.class,
                    "class": classes.get(r.prediction.class),
                    "score": r.prediction.score,
                    "latency_ms": r.latency.as_secs_f64() * 1e3,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        for (i, r) in results.iter().enumerate() {
            println!(
                "row {i}: prediction {} ({}), score {}, {:.1} ms",
                r.prediction.class,
                classes.get(r.prediction.class).map_or("?", String::as_str),
                r.prediction.score,
                r.latency.as_secs_f64() * 1e3
            );
        }
    }
    Ok(())
}

async fn eval(a: EvalArgs) -> Result<(), Error> {
    let model = FheModel::compile(builtin_model(&a.model).map_err(fhe_err)?).map_err(fhe_err)?;
    let float = builtin_float_model(&a.model).map_err(fhe_err)?;
    let data = BreastCancer::load().map_err(fhe_err)?;
    let mut rows: Vec<(Vec<f64>, usize)> = data
        .test_set()
        .map(|(_, x, label)| (x.to_vec(), label))
        .collect();
    if let Some(l) = a.limit {
        rows.truncate(l);
    }
    let pb = ProgressBar::new(rows.len() as u64);
    let t = Instant::now();
    let predictions: Vec<veilgrid_fhe::Prediction> = match &a.keys {
        Some(dir) => {
            let key = load_client_key(dir)?;
            let mut c = FheClient::via_router_secure(&a.router.router, &a.router.security()?)
                .map_err(remote)?;
            let mut out = Vec::with_capacity(rows.len());
            for chunk in rows.chunks(16) {
                let xs: Vec<Vec<f64>> = chunk.iter().map(|(x, _)| x.clone()).collect();
                let r = c.predict_batch(&key, &model, &xs).await.map_err(remote)?;
                out.extend(r.into_iter().map(|r| r.prediction));
                pb.inc(chunk.len() as u64);
            }
            out
        }
        None => {
            let (model, rows, bar) = (model.clone(), rows.clone(), pb.clone());
            tokio::task::spawn_blocking(move || -> Result<Vec<_>, Error> {
                let (client, compressed) = generate_keys().map_err(fhe_err)?;
                let server = compressed.decompress().map_err(fhe_err)?;
                let mut out = Vec::with_capacity(rows.len());
                for chunk in rows.chunks(16) {
                    let mut queries = Vec::new();
                    let mut pendings = Vec::new();
                    for (x, _) in chunk {
                        let (q, p) = client.encrypt(&model, x).map_err(fhe_err)?;
                        queries.push(q);
                        pendings.push(p);
                    }
                    for (answer, p) in evaluate_batch(&server, &model, &queries)
                        .into_iter()
                        .zip(pendings)
                    {
                        out.push(
                            p.decrypt(&client, &answer.map_err(fhe_err)?)
                                .map_err(fhe_err)?,
                        );
                    }
                    bar.inc(chunk.len() as u64);
                }
                Ok(out)
            })
            .await
            .map_err(fhe_err)??
        }
    };
    pb.finish_and_clear();
    let secs = t.elapsed().as_secs_f64();
    let n = rows.len();
    let (mut agree, mut enc_ok, mut plain_ok, mut float_ok) = (0, 0, 0, 0);
    for ((x, label), enc) in rows.iter().zip(&predictions) {
        let plain = model.model().predict(x).map_err(fhe_err)?;
        agree += usize::from(enc.class == plain.class && enc.score == plain.score);
        enc_ok += usize::from(enc.class == *label);
        plain_ok += usize::from(plain.class == *label);
        float_ok += usize::from(float.predict(x).map_err(fhe_err)? == *label);
    }
    let pct = |k: usize| 100.0 * k as f64 / n.max(1) as f64;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "model": a.model,
                "rows": n,
                "agree": agree,
                "all_agree": agree == n,
                "encrypted_accuracy": pct(enc_ok),
                "plaintext_accuracy": pct(plain_ok),
                "float_accuracy": pct(float_ok),
                "through_router": a.keys.is_some(),
                "seconds": secs,
                "ms_per_row": secs * 1e3 / n.max(1) as f64,
            }))
            .unwrap_or_default()
        );
    } else {
        println!(
            "{}: {n} test rows, encrypted == plaintext on {agree}/{n}; accuracy encrypted {:.2} %, quantized plaintext {:.2} %, float {:.2} %; {secs:.1} s ({:.1} ms per row)",
            a.model,
            pct(enc_ok),
            pct(plain_ok),
            pct(float_ok),
            secs * 1e3 / n.max(1) as f64
        );
    }
    if agree != n {
        return Err(Error::Verify(format!(
            "encrypted and plaintext predictions differ on {} rows",
            n - agree
        )));
    }
    Ok(())
}
