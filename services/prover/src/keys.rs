//! Groth16 keys of the prover: circuit-specific setup into the data directory,
//! verifying keys pinned by id in a manifest, and proving with them.
//!
//! Layout under `<data>/prover/keys/`: `keys.json` (the manifest: name, circuit,
//! shape, pinned verifying-key id, constraint count) and per key `<name>.vk`,
//! `<name>.pk` and, for inference keys, `<name>.model.json`. On load every
//! verifying key is rehashed and must match the id pinned in the manifest.
//!
//! The setup is single-party (the toxic waste comes from the OS RNG and is
//! dropped): fine for development and demos; production keys need a multi-party
//! phase-2 ceremony (see `veilgrid-circuits`' groth16 docs).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use veilgrid_circuits::{
    clearing::{BookShape, ClearingCircuit, Order, OrderBook},
    field::Fr,
    groth16::{self, Keys, PreparedVerifier, VerifyingKey},
    inference::{InferenceCircuit, Model, PrivateInput},
};
use veilgrid_proto::prover::v1 as pb;

use crate::ProverError;

/// What to set up.
#[derive(Debug, Clone)]
pub enum KeySpec {
    /// The clearing circuit of this shape.
    Clearing(BookShape),
    /// The inference circuit of this model (the model is the prover's).
    Inference {
        /// Key name.
        name: String,
        /// The model.
        model: Model,
    },
}

impl KeySpec {
    /// The key's name.
    pub fn name(&self) -> String {
        match self {
            Self::Clearing(s) => format!("clearing-{}x{}", s.max_orders, s.levels),
            Self::Inference { name, .. } => name.clone(),
        }
    }
}

/// The keys a development grid sets up when none exist: a 4-order × 4-level
/// clearing and a 4-feature linear model (both prove in well under a second).
pub fn dev_specs() -> Vec<KeySpec> {
    vec![
        KeySpec::Clearing(BookShape {
            max_orders: 4,
            levels: 4,
        }),
        KeySpec::Inference {
            name: "inference-demo-linear".into(),
            model: demo_model(),
        },
    ]
}

/// A small linear model (4 features of 8 bits) for demos and tests.
pub fn demo_model() -> Model {
    use veilgrid_circuits::inference::{LinearModel, ModelKind};
    Model {
        n_features: 4,
        input_bits: 8,
        param_bits: 16,
        kind: ModelKind::Linear(LinearModel {
            weights: vec![3, -7, 12, -20],
            bias: -20,
            threshold: -1500,
        }),
    }
}

/// One manifest row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyInfo {
    /// Key name.
    pub name: String,
    /// `clearing` or `inference`.
    pub circuit: String,
    /// The shape as JSON.
    pub shape: serde_json::Value,
    /// Pinned verifying key id (hex).
    pub vk_id: String,
    /// Constraints of the circuit.
    pub constraints: u64,
}

/// A loaded key.
#[derive(Clone)]
pub struct LoadedKey {
    /// Its manifest row.
    pub info: KeyInfo,
    /// Proving and verifying key.
    pub keys: Keys,
    /// The model (inference keys).
    pub model: Option<Model>,
    /// The verifier, prepared once.
    pub verifier: PreparedVerifier,
}

impl std::fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedKey")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// The keys a prover holds, by name.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    keys: BTreeMap<String, LoadedKey>,
}

const MANIFEST: &str = "keys.json";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ProverError + '_ {
    move |source| ProverError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn generate(spec: &KeySpec) -> Result<LoadedKey, ProverError> {
    let mut rng = rand_core::OsRng;
    let (circuit, shape, keys, constraints, model) = match spec {
        KeySpec::Clearing(shape) => {
            let keys = groth16::setup(ClearingCircuit::blank(*shape)?, &mut rng)?;
            let n = veilgrid_circuits::clearing::count_constraints(*shape)?;
            ("clearing", serde_json::to_value(shape), keys, n, None)
        }
        KeySpec::Inference { model, .. } => {
            model.validate()?;
            let keys = groth16::setup(InferenceCircuit::blank(model.shape())?, &mut rng)?;
            let n = veilgrid_circuits::inference::count_constraints(model.shape())?;
            (
                "inference",
                serde_json::to_value(model.shape()),
                keys,
                n,
                Some(model.clone()),
            )
        }
    };
    let verifier = PreparedVerifier::new(&keys.verifying_key);
    Ok(LoadedKey {
        info: KeyInfo {
            name: spec.name(),
            circuit: circuit.into(),
            shape: shape.map_err(|e| ProverError::Keys(e.to_string()))?,
            vk_id: verifier.id().to_hex(),
            constraints: constraints as u64,
        },
        keys,
        model,
        verifier,
    })
}

impl KeyRing {
    /// Generate keys for `specs` in memory.
    pub fn generate(specs: &[KeySpec]) -> Result<Self, ProverError> {
        let mut ring = Self::default();
        for s in specs {
            let k = generate(s)?;
            ring.keys.insert(k.info.name.clone(), k);
        }
        Ok(ring)
    }

    /// Generate keys for `specs` and write them under `dir` (replacing keys of the
    /// same name, keeping the others). Returns the manifest rows written.
    pub fn setup(dir: &Path, specs: &[KeySpec]) -> Result<Vec<KeyInfo>, ProverError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut manifest = read_manifest(dir)?.unwrap_or_default();
        let mut out = Vec::new();
        for s in specs {
            let k = generate(s)?;
            let name = &k.info.name;
            check_name(name)?;
            let write = |ext: &str, bytes: &[u8]| -> Result<(), ProverError> {
                let p = dir.join(format!("{name}.{ext}"));
                std::fs::write(&p, bytes).map_err(io(&p))
            };
            write(
                "vk",
                &groth16::verifying_key_to_bytes(&k.keys.verifying_key)?,
            )?;
            write("pk", &groth16::proving_key_to_bytes(&k.keys.proving_key)?)?;
            if let Some(m) = &k.model {
                write("model.json", m.to_json().as_bytes())?;
            }
            manifest.retain(|r: &KeyInfo| r.name != *name);
            manifest.push(k.info.clone());
            out.push(k.info);
        }
        let p = dir.join(MANIFEST);
        let text = serde_json::to_string_pretty(&manifest)
            .map_err(|e| ProverError::Keys(e.to_string()))?;
        std::fs::write(&p, text).map_err(io(&p))?;
        Ok(out)
    }

    /// Load the keys under `dir`; `None` if no manifest exists. Every verifying
    /// key must hash to the id pinned in the manifest.
    pub fn load(dir: &Path) -> Result<Option<Self>, ProverError> {
        let Some(manifest) = read_manifest(dir)? else {
            return Ok(None);
        };
        let mut ring = Self::default();
        for info in manifest {
            check_name(&info.name)?;
            let read = |ext: &str| -> Result<Vec<u8>, ProverError> {
                let p: PathBuf = dir.join(format!("{}.{ext}", info.name));
                std::fs::read(&p).map_err(io(&p))
            };
            let vk = groth16::verifying_key_from_bytes(&read("vk")?)?;
            let pinned = groth16::VerifyingKeyId::from_hex(&info.vk_id)?;
            let verifier = PreparedVerifier::pinned(&pinned, &vk)?;
            let pk = groth16::proving_key_from_bytes(&read("pk")?)?;
            if groth16::verifying_key_id(&pk.vk) != pinned {
                return Err(ProverError::Keys(format!(
                    "{}: the proving key does not belong to the pinned verifying key",
                    info.name
                )));
            }
            let model = if info.circuit == "inference" {
                Some(Model::from_json(&read("model.json")?)?)
            } else {
                None
            };
            let now = match (&model, info.circuit.as_str()) {
                (Some(m), "inference") => {
                    veilgrid_circuits::inference::count_constraints(m.shape())?
                }
                (None, "clearing") => {
                    let shape: BookShape = serde_json::from_value(info.shape.clone())
                        .map_err(|e| ProverError::Keys(format!("{}: shape: {e}", info.name)))?;
                    veilgrid_circuits::clearing::count_constraints(shape)?
                }
                _ => {
                    return Err(ProverError::Keys(format!(
                        "{}: unknown circuit {:?}",
                        info.name, info.circuit
                    )));
                }
            };
            if now as u64 != info.constraints {
                return Err(ProverError::StaleKeys(format!(
                    "{} was set up for a circuit of {} constraints, this version has {now}: run `veilgrid prover setup` again",
                    info.name, info.constraints
                )));
            }
            ring.keys.insert(
                info.name.clone(),
                LoadedKey {
                    info,
                    keys: Keys {
                        proving_key: pk,
                        verifying_key: vk,
                    },
                    model,
                    verifier,
                },
            );
        }
        Ok(Some(ring))
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The verifying keys, for auditors.
    pub fn verifying_keys(&self) -> Result<Vec<pb::VerifyingKey>, ProverError> {
        self.keys
            .values()
            .map(|k| {
                Ok(pb::VerifyingKey {
                    name: k.info.name.clone(),
                    circuit: k.info.circuit.clone(),
                    shape_json: k.info.shape.to_string(),
                    key: groth16::verifying_key_to_bytes(&k.keys.verifying_key)?.into(),
                    id: k.info.vk_id.clone(),
                    constraints: k.info.constraints,
                })
            })
            .collect()
    }

    /// Prove with key `name` on `witness_json` (see the proto's `ProveRequest`).
    pub fn prove(&self, name: &str, witness_json: &str) -> Result<pb::ProofRecord, ProverError> {
        let key = self
            .keys
            .get(name)
            .ok_or_else(|| ProverError::NotFound(format!("no key named {name:?}")))?;
        prove_with(
            &key.info,
            &key.keys.proving_key,
            key.model.as_ref(),
            &key.verifier,
            witness_json,
        )
    }

    /// Key `name`'s proving key and model, for a party that proves on its own machine.
    pub fn proving_key(&self, name: &str) -> Result<pb::GetProvingKeyResponse, ProverError> {
        let key = self
            .keys
            .get(name)
            .ok_or_else(|| ProverError::NotFound(format!("no key named {name:?}")))?;
        Ok(pb::GetProvingKeyResponse {
            key: Some(pb::VerifyingKey {
                name: key.info.name.clone(),
                circuit: key.info.circuit.clone(),
                shape_json: key.info.shape.to_string(),
                key: groth16::verifying_key_to_bytes(&key.keys.verifying_key)?.into(),
                id: key.info.vk_id.clone(),
                constraints: key.info.constraints,
            }),
            proving_key: groth16::proving_key_to_bytes(&key.keys.proving_key)?.into(),
            model_json: key.model.as_ref().map(Model::to_json).unwrap_or_default(),
        })
    }

    /// A proof made elsewhere with key `record.key_name`: it must name the key's
    /// pinned id and circuit and verify under it. Returns the record to keep, its
    /// statement recomputed from the public inputs (the submitter's is ignored).
    pub fn accept(&self, record: &pb::ProofRecord) -> Result<pb::ProofRecord, ProverError> {
        let key = self
            .keys
            .get(&record.key_name)
            .ok_or_else(|| ProverError::NotFound(format!("no key named {:?}", record.key_name)))?;
        if record.vk_id != key.info.vk_id || record.circuit != key.info.circuit {
            return Err(ProverError::bad(format!(
                "the record names key id {} ({}), key {} is {} ({})",
                record.vk_id, record.circuit, key.info.name, key.info.vk_id, key.info.circuit
            )));
        }
        let public = groth16::public_inputs_from_bytes(&record.public_inputs, 64)?;
        let proof = groth16::proof_from_bytes(&record.proof)?;
        key.verifier.verify(&public, &proof)?;
        let statement = match key.info.circuit.as_str() {
            "inference" => {
                let class = u64::from(public.get(2).is_some_and(|c| *c == Fr::from(1u64)));
                serde_json::json!({ "class": class, "proven_by": "submitter" })
            }
            _ => serde_json::json!({ "proven_by": "submitter" }),
        };
        Ok(pb::ProofRecord {
            key_name: key.info.name.clone(),
            circuit: key.info.circuit.clone(),
            vk_id: key.info.vk_id.clone(),
            public_inputs: groth16::public_inputs_to_bytes(&public).into(),
            proof: groth16::proof_to_bytes(&proof)?.into(),
            statement_json: statement.to_string(),
        })
    }
}

/// A key fetched from a prover ([`KeyRing::proving_key`]) to prove with locally.
#[derive(Clone)]
pub struct RemoteKey {
    info: KeyInfo,
    pk: groth16::ProvingKey,
    model: Option<Model>,
    verifier: PreparedVerifier,
}

impl std::fmt::Debug for RemoteKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteKey")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl RemoteKey {
    /// Decode a `GetProvingKeyResponse`: the verifying key must hash to the
    /// `pinned` id (take it from an audited keys.json, or the response's own
    /// id when trusting the prover), and the proving key must belong to it.
    pub fn from_response(
        resp: &pb::GetProvingKeyResponse,
        pinned: Option<&str>,
    ) -> Result<Self, ProverError> {
        let vk_info = resp
            .key
            .as_ref()
            .ok_or_else(|| ProverError::bad("GetProvingKey: no key description"))?;
        check_name(&vk_info.name)?;
        let pinned = groth16::VerifyingKeyId::from_hex(pinned.unwrap_or(&vk_info.id))?;
        let vk = groth16::verifying_key_from_bytes(&vk_info.key)?;
        let verifier = PreparedVerifier::pinned(&pinned, &vk)?;
        let pk = groth16::proving_key_from_bytes(&resp.proving_key)?;
        if groth16::verifying_key_id(&pk.vk) != pinned {
            return Err(ProverError::Keys(format!(
                "{}: the proving key does not belong to the pinned verifying key",
                vk_info.name
            )));
        }
        let model = if vk_info.circuit == "inference" {
            Some(Model::from_json(resp.model_json.as_bytes())?)
        } else {
            None
        };
        Ok(Self {
            info: KeyInfo {
                name: vk_info.name.clone(),
                circuit: vk_info.circuit.clone(),
                shape: serde_json::from_str(&vk_info.shape_json)
                    .map_err(|e| ProverError::Keys(format!("shape: {e}")))?,
                vk_id: pinned.to_hex(),
                constraints: vk_info.constraints,
            },
            pk,
            model,
            verifier,
        })
    }

    /// The key's description.
    pub fn info(&self) -> &KeyInfo {
        &self.info
    }

    /// Prove on this machine (the witness stays here).
    pub fn prove(&self, witness_json: &str) -> Result<pb::ProofRecord, ProverError> {
        prove_with(
            &self.info,
            &self.pk,
            self.model.as_ref(),
            &self.verifier,
            witness_json,
        )
    }
}

/// Prove with a key on `witness_json` (see the proto's `ProveRequest`) and check
/// the proof under its verifier before returning it.
fn prove_with(
    info: &KeyInfo,
    pk: &groth16::ProvingKey,
    model: Option<&Model>,
    verifier: &PreparedVerifier,
    witness_json: &str,
) -> Result<pb::ProofRecord, ProverError> {
    let name = &info.name;
    if witness_json.len() > 1 << 20 {
        return Err(ProverError::bad("witness over 1 MiB"));
    }
    let mut rng = rand_core::OsRng;
    let (public, proof, statement) = match (model, info.circuit.as_str()) {
        (None, "clearing") => {
            #[derive(Deserialize)]
            struct W {
                orders: Vec<Order>,
            }
            let w: W = serde_json::from_str(witness_json)
                .map_err(|e| ProverError::bad(format!("clearing witness: {e}")))?;
            let shape: BookShape = serde_json::from_value(info.shape.clone())
                .map_err(|e| ProverError::Keys(e.to_string()))?;
            let book = OrderBook::with_random_blindings(shape, w.orders, &mut rng)?;
            let (circuit, fills) = ClearingCircuit::new(book)?;
            let public = circuit.public();
            let proof = groth16::prove(pk, circuit, &mut rng)?;
            let statement = serde_json::json!({
                "level": public.level,
                "volume": public.volume,
                "orders_filled": fills.iter().filter(|f| **f > 0).count(),
            });
            (public.to_field_elements(), proof, statement)
        }
        (Some(model), "inference") => {
            #[derive(Deserialize)]
            struct W {
                features: Vec<u64>,
            }
            let w: W = serde_json::from_str(witness_json)
                .map_err(|e| ProverError::bad(format!("inference witness: {e}")))?;
            let circuit =
                InferenceCircuit::new(model.clone(), PrivateInput::new(w.features, &mut rng))?;
            let public = circuit.public();
            let proof = groth16::prove(pk, circuit, &mut rng)?;
            let statement = serde_json::json!({ "class": public.class });
            (public.to_field_elements(), proof, statement)
        }
        _ => return Err(ProverError::Keys(format!("{name}: unknown circuit"))),
    };
    verifier.verify(&public, &proof)?;
    Ok(pb::ProofRecord {
        key_name: name.to_owned(),
        circuit: info.circuit.clone(),
        vk_id: info.vk_id.clone(),
        public_inputs: groth16::public_inputs_to_bytes(&public).into(),
        proof: groth16::proof_to_bytes(&proof)?.into(),
        statement_json: statement.to_string(),
    })
}

fn check_name(name: &str) -> Result<(), ProverError> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ProverError::Keys(format!(
            "key name {name:?}: use 1..=64 of [A-Za-z0-9_-]"
        )));
    }
    Ok(())
}

fn read_manifest(dir: &Path) -> Result<Option<Vec<KeyInfo>>, ProverError> {
    let p = dir.join(MANIFEST);
    match std::fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| ProverError::Keys(format!("{}: {e}", p.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(&p)(e)),
    }
}

/// Verify a `ProofRecord` against a verifying key whose id it must name.
pub fn verify_record(record: &pb::ProofRecord, vk: &VerifyingKey) -> Result<(), ProverError> {
    let pinned = groth16::VerifyingKeyId::from_hex(&record.vk_id)?;
    let public = groth16::public_inputs_from_bytes(&record.public_inputs, 64)?;
    let proof = groth16::proof_from_bytes(&record.proof)?;
    groth16::verify_pinned(&pinned, vk, &public, &proof)?;
    Ok(())
}
