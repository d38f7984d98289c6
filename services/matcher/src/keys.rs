//! Keys of three matching nodes that run as separate processes (`veilgrid serve
//! matcher-node`), made once by `veilgrid match keygen --out DIR`:
//!
//! * `DIR/party-<i>/identity.key`: node `i`'s Ed25519 signing and X25519 sealing keys
//!   (the kit's identity file);
//! * `DIR/party-<i>/seeds.bin`: node `i`'s two pairwise PRF seeds, 64 bytes:
//!   the seed shared with node `i−1`, then the one shared with node `i+1`
//!   (node `i`'s second seed is node `i+1`'s first);
//! * `DIR/nodes.json`: the public half, for the other nodes, the router's rate feed
//!   and clients: `{"nodes": [{"party", "provider_id", "seal_key"}, …]}` (hex).
//!
//! Each operator gets only its own `party-<i>` directory plus `nodes.json`; a node reads
//! nothing else. The files are secret (written owner-only) except `nodes.json`.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use veilgrid_core::seal::SealPublicKey;
use veilgrid_kit::identity::Identity;
use veilgrid_mpc::{NodeKeys, PairSeed, PartyId};
use zeroize::Zeroizing;

use crate::MatchError;

/// Name of the public file.
pub const NODES_FILE: &str = "nodes.json";
/// Name of a node's seeds file inside its `party-<i>` directory.
pub const SEEDS_FILE: &str = "seeds.bin";
/// Largest `nodes.json` read.
pub const MAX_NODES_FILE: usize = 64 << 10;

/// The public keys of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicNode {
    /// Its Ed25519 provider id.
    pub provider_id: [u8; 32],
    /// Its X25519 sealing key.
    pub seal_key: [u8; 32],
}

fn storage(what: &'static str, path: &Path, reason: impl ToString) -> MatchError {
    MatchError::Storage {
        what,
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// The directory of party `i` under a keys directory.
pub fn party_dir(dir: &Path, party: u8) -> PathBuf {
    dir.join(format!("party-{party}"))
}

fn write_secret(path: &Path, bytes: &[u8]) -> Result<(), MatchError> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path).map_err(|e| storage("creating", path, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| storage("writing", path, e))
}

/// Make the keys of three nodes under `dir` (which must not hold keys yet) and return
/// their public halves.
pub fn generate(dir: &Path) -> Result<[PublicNode; 3], MatchError> {
    let nodes_path = dir.join(NODES_FILE);
    if nodes_path.exists() {
        return Err(storage(
            "refusing to overwrite",
            &nodes_path,
            "keys exist already",
        ));
    }
    let seeds = [PairSeed::random(), PairSeed::random(), PairSeed::random()];
    let mut public = Vec::with_capacity(3);
    for p in PartyId::ALL {
        let pd = party_dir(dir, p.as_u8());
        let id = Identity::load_or_create(&pd)?;
        let mut both = Zeroizing::new([0u8; 64]);
        // as NodeKeys::generate_all: node i shares seed i with node i−1, i+1 with i+1
        both[..32].copy_from_slice(&seeds[p.index()].to_bytes());
        both[32..].copy_from_slice(&seeds[p.next().index()].to_bytes());
        write_secret(&pd.join(SEEDS_FILE), &both[..])?;
        public.push(PublicNode {
            provider_id: id.provider_id(),
            seal_key: id.seal_public().to_bytes(),
        });
    }
    let json = serde_json::json!({
        "nodes": public.iter().enumerate().map(|(i, n)| serde_json::json!({
            "party": i,
            "provider_id": hex::encode(n.provider_id),
            "seal_key": hex::encode(n.seal_key),
        })).collect::<Vec<_>>()
    });
    let text =
        serde_json::to_string_pretty(&json).map_err(|e| storage("encoding", &nodes_path, e))?;
    std::fs::write(&nodes_path, text).map_err(|e| storage("writing", &nodes_path, e))?;
    public
        .try_into()
        .map_err(|_| storage("generating", dir, "three nodes"))
}

fn hex32(what: &'static str, path: &Path, v: &serde_json::Value) -> Result<[u8; 32], MatchError> {
    let s = v
        .as_str()
        .ok_or_else(|| storage("reading", path, format!("{what} is not a string")))?;
    let b = hex::decode(s).map_err(|e| storage("reading", path, format!("{what}: {e}")))?;
    b.try_into()
        .map_err(|_| storage("reading", path, format!("{what} is not 32 bytes")))
}

/// Read `nodes.json`: the three nodes' public keys by party index.
pub fn load_public(path: &Path) -> Result<[PublicNode; 3], MatchError> {
    let text = std::fs::read(path).map_err(|e| storage("reading", path, e))?;
    veilgrid_core::limits::check_len("nodes file", text.len(), MAX_NODES_FILE)?;
    let v: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| storage("parsing", path, e))?;
    let list = v["nodes"]
        .as_array()
        .ok_or_else(|| storage("reading", path, "no \"nodes\" list"))?;
    let mut found: [Option<PublicNode>; 3] = [None; 3];
    for n in list {
        let party = n["party"]
            .as_u64()
            .filter(|p| *p < 3)
            .ok_or_else(|| storage("reading", path, "party must be 0, 1 or 2"))?
            as usize;
        if found[party].is_some() {
            return Err(storage("reading", path, format!("party {party} twice")));
        }
        let seal_key = hex32("seal_key", path, &n["seal_key"])?;
        SealPublicKey::from_bytes(&seal_key)?;
        found[party] = Some(PublicNode {
            provider_id: hex32("provider_id", path, &n["provider_id"])?,
            seal_key,
        });
    }
    match found {
        [Some(a), Some(b), Some(c)] => Ok([a, b, c]),
        _ => Err(storage("reading", path, "need parties 0, 1 and 2")),
    }
}

/// Node `party`'s own keys from a keys directory: its identity (checked against
/// `nodes.json`) and its PRF seeds.
pub fn load_party(
    dir: &Path,
    party: u8,
) -> Result<(Identity, NodeKeys, [PublicNode; 3]), MatchError> {
    let me = PartyId::new(party)?;
    let public = load_public(&dir.join(NODES_FILE))?;
    let pd = party_dir(dir, party);
    let id_path = pd.join("identity.key");
    if !id_path.exists() {
        // never create a new identity here: the others pin the one in nodes.json
        return Err(storage(
            "reading",
            &id_path,
            "missing (run `veilgrid match keygen`)",
        ));
    }
    let id = Identity::load_or_create(&pd)?;
    if id.provider_id() != public[party as usize].provider_id
        || id.seal_public().to_bytes() != public[party as usize].seal_key
    {
        return Err(storage(
            "checking",
            &id_path,
            format!("the key is not party {party}'s in {NODES_FILE}"),
        ));
    }
    let seeds_path = pd.join(SEEDS_FILE);
    let bytes =
        Zeroizing::new(std::fs::read(&seeds_path).map_err(|e| storage("reading", &seeds_path, e))?);
    if bytes.len() != 64 {
        return Err(storage("reading", &seeds_path, "must be 64 bytes"));
    }
    let mut a = Zeroizing::new([0u8; 32]);
    let mut b = Zeroizing::new([0u8; 32]);
    a.copy_from_slice(&bytes[..32]);
    b.copy_from_slice(&bytes[32..]);
    let keys = NodeKeys::new(me, PairSeed::from_bytes(*a), PairSeed::from_bytes(*b));
    Ok((id, keys, public))
}

/// A party index from `--party`: `0`, `1`, `2`, or a StatefulSet pod name ending in
/// `-<ordinal>` (`veilgrid-matcher-2`).
pub fn parse_party(s: &str) -> Result<u8, MatchError> {
    let tail = s.rsplit('-').next().unwrap_or(s);
    tail.parse::<u8>().ok().filter(|p| *p < 3).ok_or_else(|| {
        MatchError::BadRequest(format!(
            "party {s:?}: expected 0, 1, 2 or a pod name ending in -0, -1 or -2"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keygen_then_each_party_loads_consistent_keys() {
        let dir = tempfile::tempdir().unwrap();
        let public = generate(dir.path()).unwrap();
        assert!(generate(dir.path()).is_err(), "never overwrites");
        assert_eq!(load_public(&dir.path().join(NODES_FILE)).unwrap(), public);
        let loaded: Vec<_> = (0..3).map(|p| load_party(dir.path(), p).unwrap()).collect();
        for (p, (id, keys, _)) in loaded.iter().enumerate() {
            assert_eq!(id.provider_id(), public[p].provider_id);
            assert_eq!(keys.party().as_u8() as usize, p);
        }
        // a round run with the loaded keys clears like one with generate_all's
        let keys = [0, 1, 2].map(|p| loaded[p].1.clone());
        let round = [9u8; 16];
        let payloads: Vec<_> = veilgrid_mpc::plain::test_vector_book()
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let id = veilgrid_mpc::OrderId::new(format!("o{i}").as_bytes()).unwrap();
                veilgrid_mpc::share_order(round, &id, o, 64).unwrap()
            })
            .collect();
        let cfg = veilgrid_mpc::RoundConfig {
            round,
            levels: 64,
            mode: veilgrid_mpc::SecurityMode::SemiHonest,
        };
        let out = veilgrid_mpc::sim::run_round(cfg, &keys, &payloads).unwrap();
        assert_eq!(
            out.result,
            veilgrid_mpc::ClearingResult::Trade {
                level: 33,
                volume: 10937
            }
        );
        // one party's identity swapped for another's is refused
        std::fs::copy(
            party_dir(dir.path(), 0).join("identity.key"),
            party_dir(dir.path(), 1).join("identity.key"),
        )
        .unwrap();
        assert!(load_party(dir.path(), 1).is_err());
        assert!(load_party(dir.path(), 3).is_err());
    }

    #[test]
    fn party_from_an_index_or_a_pod_name() {
        assert_eq!(parse_party("1").unwrap(), 1);
        assert_eq!(parse_party("veilgrid-matcher-2").unwrap(), 2);
        assert!(parse_party("veilgrid-matcher-3").is_err());
        assert!(parse_party("x").is_err());
    }
}
