//! Chapter: FHE inference. A hospital-like client makes its TFHE keys, registers its evaluation
//! key through the router (streamed in 1 MiB chunks), sends five encrypted patient rows of the
//! held-out breast cancer data, and prints the decrypted predictions next to the plaintext
//! model's and the true labels, with the time taken. The logistic regression answers all five;
//! the tree ensemble (111 bootstraps, ~2 s per row on two cores) answers one.

use std::time::Instant;

use veilgrid_core::protocol::ProtocolId;
use veilgrid_fhe::{FheModel, builtin_model, dataset::BreastCancer};
use veilgrid_fhe_service::client::FheClient;

use super::{Story, Target};
use crate::Error;

fn err(e: impl std::fmt::Display) -> Error {
    Error::Service(e.to_string())
}

/// Rows of the held-out split the hospital sends.
const ROWS: usize = 5;

pub(super) async fn chapter_fhe(story: &mut Story, t: &Target) {
    story.chapter("FHE inference: a hospital's encrypted queries, decrypted only by the hospital");
    let served = match t.connect().await {
        Ok(mut g) => g
            .providers(Some(&ProtocolId::from_name(
                veilgrid_fhe_service::protocols::INFER,
            )))
            .await
            .is_ok_and(|p| !p.is_empty()),
        Err(_) => false,
    };
    if !served {
        if story.print {
            println!("  (skipped: no FHE service is registered with this router)");
        }
        return;
    }
    let Ok(data) = BreastCancer::load() else {
        return;
    };
    let mut keys = None;
    story
        .step("the hospital generates its TFHE keys locally", || async {
            let made = tokio::task::spawn_blocking(|| -> Result<_, Error> {
                let (client, compressed) = veilgrid_fhe::generate_keys().map_err(err)?;
                let bytes = bytes::Bytes::from(compressed.to_bytes().map_err(err)?);
                Ok((client, bytes, compressed.id()))
            })
            .await
            .map_err(err)??;
            let detail = format!(
                "key id {}…, evaluation key {:.1} MB (compressed); the client key stays here",
                &made.2.to_hex()[..16],
                made.1.len() as f64 / 1e6
            );
            keys = Some(made);
            Ok(detail)
        })
        .await;
    let Some((client_key, server_key, key_id)) = keys else {
        return;
    };
    let Ok(mut fhe) = t
        .client()
        .and_then(|sec| FheClient::via_router_secure(&t.addr, &sec).map_err(err))
    else {
        return;
    };
    let registered = story
        .step(
            "register the evaluation key through the router (streamed, 1 MiB chunks)",
            || async {
                let r = fhe
                    .register_key(key_id, server_key.clone(), |_| {})
                    .await
                    .map_err(err)?;
                Ok(format!(
                    "{} bytes stored under {}… (parameters {})",
                    r.stored_bytes,
                    &hex::encode(&r.key_id)[..16],
                    r.parameter_set
                ))
            },
        )
        .await;
    if !registered {
        return;
    }
    for (name, n, note) in [
        ("breast-cancer-logreg", ROWS, "leveled, no bootstrap"),
        (
            "breast-cancer-gbt",
            1,
            "20 trees, 111 bootstraps: ~2 s per row on 2 cores, so one row only",
        ),
    ] {
        let title = format!("{n} encrypted row(s) through {name} ({note})");
        story
            .step(&title, || async {
                let model = FheModel::compile(builtin_model(name).map_err(err)?).map_err(err)?;
                let t = Instant::now();
                let mut lines = vec![format!(
                    "{:>5}  {:>9}  {:>9}  {:>10}  {:>9}",
                    "row", "encrypted", "plaintext", "true label", "ms"
                )];
                let mut agree = 0;
                for (i, x, label) in data.test_set().take(n) {
                    let r = fhe.predict(&client_key, &model, x).await.map_err(err)?;
                    let plain = model.model().predict(x).map_err(err)?;
                    let class = |c: usize| data.classes.get(c).cloned().unwrap_or_default();
                    agree += usize::from(
                        r.prediction.class == plain.class && r.prediction.score == plain.score,
                    );
                    lines.push(format!(
                        "{i:>5}  {:>9}  {:>9}  {:>10}  {:>9.1}",
                        class(r.prediction.class),
                        class(plain.class),
                        class(label),
                        r.latency.as_secs_f64() * 1e3
                    ));
                }
                if agree != n {
                    return Err(Error::Verify(format!(
                        "{} of {n} decrypted predictions differ from the plaintext model",
                        n - agree
                    )));
                }
                lines.push(format!(
                    "all {n} decrypted predictions equal the plaintext model's; {:.2} s in total",
                    t.elapsed().as_secs_f64()
                ));
                Ok(lines.join("\n        "))
            })
            .await;
    }
}
