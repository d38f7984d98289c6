//! Whole rounds: exact sums, dropouts, restarts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use veilgrid_aggregation::*;

#[test]
fn sum_is_exact_for_a_thousand_clients() {
    let s = setup(RoundParams::new(8, 16, 1000, 5, 2).unwrap(), 1);
    let inputs = random_inputs(&mut rng(1), 1000, 8, 16);
    let msgs = client_messages(&s, &inputs, 0);
    // The server takes the messages as bytes (the fast path), members answer over the set.
    let mut server = ServerCollecting::new(&s.round);
    for m in &msgs {
        assert_eq!(
            server.accept_bytes(&m.to_bytes(&s.round)).unwrap(),
            m.client()
        );
    }
    let mut server = server.close().unwrap();
    for i in 1..=5u16 {
        server
            .accept_member(&member_answer(&s, i, &msgs, server.present()).unwrap())
            .unwrap();
    }
    let result = server.finish().unwrap();
    assert_eq!(result.sum, plain_sum(&inputs));
    assert_eq!(result.counted, (0..1000).collect::<Vec<_>>());
}

#[test]
fn sum_is_exact_at_full_capacity() {
    // N = 7 clients of the widest entries each ring set holds, all at the maximum: the tightest
    // case (Δ·(N·(2^B−1)+1) just below p), including the largest rounding error.
    for (k, set) in RingSet::ALL.into_iter().enumerate() {
        let bits = params::max_bits(set, 7);
        assert!(!params::fits(set, 7, bits + 1));
        let p = RoundParams::new(4, bits, 7, 3, 1)
            .unwrap()
            .with_ring(set)
            .unwrap();
        let s = setup(p, 20 + k as u8);
        let inputs = vec![vec![(1u64 << bits) - 1; 4]; 7];
        let msgs = client_messages(&s, &inputs, 0);
        assert_eq!(
            run(&s, &msgs, &[1, 2]).unwrap().sum,
            plain_sum(&inputs),
            "{set:?}"
        );
    }
}

#[test]
fn sum_is_exact_for_long_vectors() {
    let s = setup(RoundParams::new(100_000, 20, 10, 5, 2).unwrap(), 3);
    let inputs = random_inputs(&mut rng(3), 3, 100_000, 20);
    let msgs = client_messages(&s, &inputs, 7);
    assert_eq!(run(&s, &msgs, &[2, 4, 5]).unwrap().sum, plain_sum(&inputs));
}

#[test]
fn sum_is_exact_with_the_wide_ring() {
    let p = RoundParams::new(5000, 40, 100, 4, 2).unwrap();
    assert_eq!(p.ring(), RingSet::R4096P61);
    let s = setup(p, 4);
    let inputs = random_inputs(&mut rng(4), 5, 5000, 40);
    let msgs = client_messages(&s, &inputs, 0);
    assert_eq!(run(&s, &msgs, &[1, 3, 4]).unwrap().sum, plain_sum(&inputs));
}

#[test]
fn dropped_and_late_clients_are_not_counted() {
    let s = setup(RoundParams::new(32, 12, 20, 5, 2).unwrap(), 5);
    let inputs = random_inputs(&mut rng(5), 20, 32, 12);
    let msgs = client_messages(&s, &inputs, 0);
    // Clients 15..20 never reach the server before the deadline; 18 and 19 arrive late.
    let mut server = ServerCollecting::new(&s.round);
    for m in &msgs[..15] {
        server.accept(m).unwrap();
    }
    let mut server = server.close().unwrap();
    // After `close` there is no way to add the late messages (the type has no `accept`).
    let _late = (&msgs[18], &msgs[19]);
    for i in [1u16, 2, 3, 4, 5] {
        // Members did receive shares of every client, including the late ones.
        let answer = member_answer(&s, i, &msgs, server.present()).unwrap();
        server.accept_member(&answer).unwrap();
    }
    let result = server.finish().unwrap();
    assert_eq!(result.sum, plain_sum(&inputs[..15]));
    assert_eq!(result.counted, (0..15).collect::<Vec<_>>());
}

#[test]
fn silent_members_up_to_m_minus_t_plus_one() {
    let s = setup(RoundParams::new(16, 10, 10, 5, 2).unwrap(), 6);
    let inputs = random_inputs(&mut rng(6), 6, 16, 10);
    let msgs = client_messages(&s, &inputs, 0);
    for members in [[1u16, 2, 3], [3, 4, 5], [1, 3, 5], [2, 4, 5]] {
        assert_eq!(run(&s, &msgs, &members).unwrap().sum, plain_sum(&inputs));
    }
}

#[test]
fn fewer_than_t_plus_one_members_release_nothing() {
    let s = setup(RoundParams::new(16, 10, 10, 5, 2).unwrap(), 7);
    let inputs = random_inputs(&mut rng(7), 4, 16, 10);
    let msgs = client_messages(&s, &inputs, 0);
    for members in [&[][..], &[1], &[2, 5]] {
        let err = run(&s, &msgs, members).unwrap_err();
        assert_eq!(
            err,
            Error::NotEnoughMembers {
                have: members.len(),
                need: 3
            }
        );
    }
}

#[test]
fn a_member_sending_a_wrong_share_sum_aborts_the_round() {
    let s = setup(RoundParams::new(16, 10, 10, 5, 2).unwrap(), 8);
    let inputs = random_inputs(&mut rng(8), 4, 16, 10);
    let msgs = client_messages(&s, &inputs, 0);
    let mut server = ServerCollecting::new(&s.round);
    for m in &msgs {
        server.accept(m).unwrap();
    }
    let mut server = server.close().unwrap();
    for i in 1..=4u16 {
        let answer = member_answer(&s, i, &msgs, server.present()).unwrap();
        let answer = if i == 4 {
            // Flip one low bit of the first residue (still canonical).
            let mut b = answer.to_bytes(&s.round);
            let off = 4 + 1 + 32 + 2 + 32 + 4;
            b[off] ^= 1;
            MemberMessage::from_bytes(&s.round, &b).unwrap()
        } else {
            answer
        };
        server.accept_member(&answer).unwrap();
    }
    assert_eq!(server.finish().unwrap_err(), Error::InconsistentMembers(4));
}

#[test]
fn server_state_survives_a_restart() {
    let s = setup(RoundParams::new(64, 16, 10, 3, 1).unwrap(), 9);
    let inputs = random_inputs(&mut rng(9), 6, 64, 16);
    let msgs = client_messages(&s, &inputs, 0);
    let mut server = ServerCollecting::new(&s.round);
    for m in &msgs[..3] {
        server.accept(m).unwrap();
    }
    let snapshot = server.snapshot();
    let round_bytes = s.round.to_bytes();
    drop(server);
    // "Restart": rebuild the round from its bytes and the server from its snapshot.
    let round = Round::from_bytes(&round_bytes).unwrap();
    assert_eq!(round.digest(), s.round.digest());
    let mut server = ServerCollecting::restore(&round, &snapshot).unwrap();
    assert_eq!(
        server.accept(&msgs[1]).unwrap_err(),
        Error::DuplicateClient(1)
    );
    for m in &msgs[3..] {
        server.accept(m).unwrap();
    }
    let mut server = server.close().unwrap();
    server
        .accept_member(&member_answer(&s, 1, &msgs, server.present()).unwrap())
        .unwrap();
    // Restart again after the deadline, with one member message received.
    let awaiting = server.snapshot();
    drop(server);
    let mut server = ServerAwaitingMembers::restore(&round, &awaiting).unwrap();
    assert_eq!(server.members().collect::<Vec<_>>(), vec![1]);
    server
        .accept_member(&member_answer(&s, 3, &msgs, server.present()).unwrap())
        .unwrap();
    assert_eq!(server.finish().unwrap().sum, plain_sum(&inputs));
    // A snapshot of another round is refused.
    let other = setup(RoundParams::new(64, 16, 10, 3, 1).unwrap(), 10);
    assert_eq!(
        ServerCollecting::restore(&other.round, &snapshot).unwrap_err(),
        Error::WrongRound
    );
    assert!(ServerAwaitingMembers::restore(&other.round, &awaiting).is_err());
    assert!(ServerAwaitingMembers::restore(&round, &snapshot).is_err());
}

#[test]
fn round_state_can_be_shared_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Round>();
    send_sync::<ClientMessage>();
    send_sync::<MemberMessage>();
    send::<ServerCollecting<'static>>();
    send::<ServerAwaitingMembers<'static>>();
    send::<CommitteeMember<'static>>();
    send_sync::<HeldShares>();
}

#[test]
fn members_that_open_shares_as_they_arrive_answer_the_same() {
    // Each member opens its shares in batches while the round collects, setting its state aside
    // between batches, and answers at the end from the running sum; one client of the batches is
    // left out of the declared set, so the answer has to subtract its share.
    let s = setup(RoundParams::new(24, 12, 12, 5, 2).unwrap(), 41);
    let inputs = random_inputs(&mut rng(41), 12, 24, 12);
    let msgs = client_messages(&s, &inputs, 100);
    let declared: Vec<u64> = msgs
        .iter()
        .map(|m| m.client())
        .filter(|&c| c != 105)
        .collect();
    let present = PresentSet::new(&s.round, declared.clone()).unwrap();
    let mut server2 = ServerCollecting::new(&s.round);
    for m in msgs.iter().filter(|m| m.client() != 105) {
        server2.accept(m).unwrap();
    }
    let mut server2 = server2.close().unwrap();
    assert_eq!(server2.present(), &present);
    for i in 1..=3u16 {
        let key = &s.keys[i as usize - 1];
        let mut held = CommitteeMember::new(&s.round, i, key).unwrap().suspend();
        for batch in msgs.chunks(5) {
            let mut m = CommitteeMember::resume(&s.round, i, key, held).unwrap();
            for msg in batch {
                m.accept_share(msg.client(), msg.sealed_share(i).unwrap())
                    .unwrap();
            }
            held = m.suspend();
        }
        assert_eq!(held.len(), 12);
        assert!(held.contains(105) && !held.contains(99));
        // Held shares are tied to their round and member.
        let other = setup(RoundParams::new(24, 12, 12, 5, 2).unwrap(), 42);
        let wrong = CommitteeMember::new(&s.round, i, key).unwrap().suspend();
        assert!(CommitteeMember::resume(&other.round, i, key, wrong).is_err());
        let wrong = CommitteeMember::new(&s.round, i, key).unwrap().suspend();
        assert!(
            CommitteeMember::resume(&s.round, i % 5 + 1, &s.keys[(i % 5) as usize], wrong).is_err()
        );
        let m = CommitteeMember::resume(&s.round, i, key, held).unwrap();
        let answer = m.respond(&present).unwrap();
        // The same answer as a member that opened exactly the declared clients' shares at the end.
        let fresh = member_answer(
            &s,
            i,
            &msgs[..5]
                .iter()
                .chain(&msgs[6..])
                .cloned()
                .collect::<Vec<_>>(),
            &present,
        )
        .unwrap();
        assert_eq!(answer.to_bytes(&s.round), fresh.to_bytes(&s.round));
        server2.accept_member(&answer).unwrap();
    }
    let result = server2.finish().unwrap();
    let kept: Vec<Vec<u64>> = inputs
        .iter()
        .enumerate()
        .filter(|(k, _)| *k != 5)
        .map(|(_, x)| x.clone())
        .collect();
    assert_eq!(result.sum, plain_sum(&kept));
    assert_eq!(result.counted, declared);
}

mod random_parameters {
    use super::*;
    use proptest::prelude::*;
    use rand::Rng;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]
        /// Every per-round parameter choice (L, B, N, m, t) sums exactly with any t + 1 members.
        #[test]
        fn any_parameters_sum_exactly(
            len in 1u32..40,
            max_clients in 1u32..3000,
            committee in 2u16..7,
            t_frac in 0.0f64..1.0,
            bits_frac in 0.0f64..1.0,
            seed in any::<u64>(),
        ) {
            let threshold = 1 + ((committee - 1) as f64 * t_frac) as u16 % (committee - 1);
            let widest = params::max_bits(RingSet::R4096P61, max_clients);
            let bits = 1 + ((widest - 1) as f64 * bits_frac) as u32;
            let p = RoundParams::new(len, bits, max_clients, committee, threshold).unwrap();
            let s = setup(p, (seed % 200) as u8);
            let mut r = rng(seed);
            let clients = r.gen_range(1..=max_clients.min(4)) as usize;
            let inputs = random_inputs(&mut r, clients, len as usize, bits);
            let msgs = client_messages(&s, &inputs, seed % 1000);
            // A random subset of t + 1 members answers.
            let mut members: Vec<u16> = (1..=committee).collect();
            for i in (1..members.len()).rev() {
                members.swap(i, r.gen_range(0..=i));
            }
            members.truncate(threshold as usize + 1);
            members.sort_unstable();
            prop_assert_eq!(run(&s, &msgs, &members).unwrap().sum, plain_sum(&inputs));
        }
    }
}
