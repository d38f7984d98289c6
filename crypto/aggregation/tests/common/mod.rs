//! Helpers shared by the integration tests: a round with real sealing keys and a full run.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand::{Rng, SeedableRng, rngs::StdRng};
use veilgrid_aggregation::*;
use veilgrid_core::seal::SealKeyPair;

pub(crate) struct Setup {
    pub(crate) round: Round,
    pub(crate) keys: Vec<SealKeyPair>,
}

pub(crate) fn setup(params: RoundParams, id: u8) -> Setup {
    let keys: Vec<SealKeyPair> = (0..params.committee())
        .map(|_| SealKeyPair::generate())
        .collect();
    let round = Round::new(
        [id; 32],
        params,
        [id.wrapping_add(100); 32],
        keys.iter().map(|k| k.public()).collect(),
    )
    .unwrap();
    Setup { round, keys }
}

pub(crate) fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

pub(crate) fn random_inputs(
    rng: &mut StdRng,
    clients: usize,
    len: usize,
    bits: u32,
) -> Vec<Vec<u64>> {
    (0..clients)
        .map(|_| (0..len).map(|_| rng.gen_range(0..1u64 << bits)).collect())
        .collect()
}

pub(crate) fn plain_sum(inputs: &[Vec<u64>]) -> Vec<u64> {
    let mut s = vec![0u64; inputs[0].len()];
    for v in inputs {
        for (a, b) in s.iter_mut().zip(v) {
            *a += b;
        }
    }
    s
}

pub(crate) fn client_messages(s: &Setup, inputs: &[Vec<u64>], first_id: u64) -> Vec<ClientMessage> {
    let mut r = rand_core::OsRng;
    inputs
        .iter()
        .enumerate()
        .map(|(i, x)| {
            Client::new(&s.round, first_id + i as u64)
                .encode(x)
                .unwrap()
                .mask(&mut r)
                .unwrap()
        })
        .collect()
}

/// Member `index` answers for `present` after opening the shares of `msgs`.
pub(crate) fn member_answer(
    s: &Setup,
    index: u16,
    msgs: &[ClientMessage],
    present: &PresentSet,
) -> Result<MemberMessage, Error> {
    let mut m = CommitteeMember::new(&s.round, index, &s.keys[index as usize - 1])?;
    for msg in msgs {
        m.accept_share(msg.client(), msg.sealed_share(index).unwrap())?;
    }
    m.respond(present)
}

/// Server accepts `msgs`, closes, and the listed members answer; returns the result.
pub(crate) fn run(
    s: &Setup,
    msgs: &[ClientMessage],
    members: &[u16],
) -> Result<AggregateResult, Error> {
    let mut server = ServerCollecting::new(&s.round);
    for m in msgs {
        server.accept(m)?;
    }
    let mut server = server.close()?;
    for &i in members {
        let answer = member_answer(s, i, msgs, server.present())?;
        server.accept_member(&answer)?;
    }
    server.finish()
}

/// Offset of the packed masked vector in a client message.
pub(crate) const MASKED_OFFSET: usize = 4 + 1 + 32 + 8 + 4;

fn window(bytes: &[u8]) -> u128 {
    let mut a = [0u8; 16];
    a.copy_from_slice(&bytes[MASKED_OFFSET..MASKED_OFFSET + 16]);
    u128::from_le_bytes(a)
}

/// The first packed masked value of an encoded client message.
pub(crate) fn first_masked(round: &Round, bytes: &[u8]) -> u64 {
    let w = round.params().ring().output_bits();
    (window(bytes) & ((1u128 << w) - 1)) as u64
}

/// Overwrites the first packed masked value (any `w`-bit value, canonical or not).
pub(crate) fn set_first_masked(round: &Round, bytes: &mut [u8], value: u64) {
    let w = round.params().ring().output_bits();
    let mask = (1u128 << w) - 1;
    let new = (window(bytes) & !mask) | (value as u128 & mask);
    bytes[MASKED_OFFSET..MASKED_OFFSET + 16].copy_from_slice(&new.to_le_bytes());
}
