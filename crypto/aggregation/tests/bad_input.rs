//! Bad input gets a clear typed error and never corrupts the round for the others.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use proptest::prelude::*;
use veilgrid_aggregation::*;
use veilgrid_core::seal::SealKeyPair;

fn params() -> RoundParams {
    RoundParams::new(16, 10, 10, 5, 2).unwrap()
}

#[test]
fn wrong_length_and_entries_over_the_bound() {
    let s = setup(params(), 1);
    assert_eq!(
        Client::new(&s.round, 1).encode(&[1; 15]).unwrap_err(),
        Error::WrongLength {
            expected: 16,
            got: 15
        }
    );
    let mut x = vec![0u64; 16];
    x[9] = 1 << 10;
    assert_eq!(
        Client::new(&s.round, 1).encode(&x).unwrap_err(),
        Error::EntryOverBound { index: 9, bits: 10 }
    );
    // A message of a round with another length fails to decode in this round.
    let other = setup(RoundParams::new(17, 10, 10, 5, 2).unwrap(), 1);
    let msg = client_messages(&other, &[vec![1; 17]], 0).remove(0);
    assert!(ClientMessage::from_bytes(&s.round, &msg.to_bytes(&other.round)).is_err());
}

#[test]
fn duplicate_client_and_too_many_clients() {
    let s = setup(RoundParams::new(4, 8, 3, 3, 1).unwrap(), 2);
    let inputs = random_inputs(&mut rng(2), 4, 4, 8);
    let mut msgs = client_messages(&s, &inputs, 0);
    let mut server = ServerCollecting::new(&s.round);
    server.accept(&msgs[0]).unwrap();
    // The same client again, even with another vector.
    let again = client_messages(&s, &inputs[1..2], 0).remove(0);
    assert_eq!(
        server.accept(&again).unwrap_err(),
        Error::DuplicateClient(0)
    );
    server.accept(&msgs[1]).unwrap();
    server.accept(&msgs[2]).unwrap();
    assert_eq!(
        server.accept(&msgs[3]).unwrap_err(),
        Error::TooManyClients(3)
    );
    msgs.truncate(3);
    let mut server = server.close().unwrap();
    for i in [1u16, 2] {
        server
            .accept_member(&member_answer(&s, i, &msgs, server.present()).unwrap())
            .unwrap();
    }
    assert_eq!(server.finish().unwrap().sum, plain_sum(&inputs[..3]));
}

#[test]
fn messages_of_another_round_are_refused() {
    let s = setup(params(), 3);
    // Same id, same parameters, other public seed and keys: another round.
    let other = setup(params(), 4);
    let msg = client_messages(&other, &[vec![1; 16]], 0).remove(0);
    assert_eq!(
        ClientMessage::from_bytes(&s.round, &msg.to_bytes(&other.round)).unwrap_err(),
        Error::WrongRound
    );
    let mut server = ServerCollecting::new(&s.round);
    assert_eq!(server.accept(&msg).unwrap_err(), Error::WrongRound);
    // A replayed member message of another round.
    let present = PresentSet::new(&other.round, vec![0]).unwrap();
    let answer = member_answer(&other, 1, std::slice::from_ref(&msg), &present).unwrap();
    assert_eq!(
        MemberMessage::from_bytes(&s.round, &answer.to_bytes(&other.round)).unwrap_err(),
        Error::WrongRound
    );
    // A member of this round asked to sum over another round's declared set.
    let mut member = CommitteeMember::new(&s.round, 1, &s.keys[0]).unwrap();
    assert!(matches!(
        member.accept_share(0, msg.sealed_share(1).unwrap()),
        Err(Error::BadSharePayload { client: 0, .. })
    ));
    assert_eq!(member.respond(&present).unwrap_err(), Error::WrongRound);
}

#[test]
fn malformed_share_payloads_are_refused_and_the_client_excluded() {
    let s = setup(params(), 5);
    let inputs = random_inputs(&mut rng(5), 4, 16, 10);
    let mut msgs = client_messages(&s, &inputs, 0);
    // Client 3 sends garbage to member 1, and member 2's payload in member 3's slot.
    let mut bad = msgs[3].to_bytes(&s.round);
    let garbage_len = s.round.sealed_share_len();
    let first_share = bad.len() - 1 - 5 * (4 + garbage_len) + 4;
    for b in &mut bad[first_share..first_share + garbage_len] {
        *b ^= 0x5a;
    }
    let mut bad_msg = ClientMessage::from_bytes(&s.round, &bad).unwrap();
    let swapped = bad_msg.sealed_share(2).unwrap().to_vec();
    let mut b2 = bad_msg.to_bytes(&s.round);
    let third = first_share + 2 * (4 + garbage_len);
    b2[third..third + garbage_len].copy_from_slice(&swapped);
    bad_msg = ClientMessage::from_bytes(&s.round, &b2).unwrap();
    msgs[3] = bad_msg;

    let mut server = ServerCollecting::new(&s.round);
    for m in &msgs {
        server.accept(m).unwrap();
    }
    let mut reported = Vec::new();
    let mut members: Vec<CommitteeMember<'_>> = (1..=5u16)
        .map(|i| CommitteeMember::new(&s.round, i, &s.keys[i as usize - 1]).unwrap())
        .collect();
    for (i, member) in members.iter_mut().enumerate() {
        for m in &msgs {
            match member.accept_share(m.client(), m.sealed_share(i as u16 + 1).unwrap()) {
                Ok(()) => {}
                Err(Error::BadSharePayload { client, .. }) => reported.push((i + 1, client)),
                Err(e) => panic!("unexpected {e}"),
            }
        }
    }
    assert_eq!(reported, vec![(1, 3), (3, 3)]);
    // The server excludes the reported client before declaring the set.
    server.exclude(&msgs[3]).unwrap();
    let mut server = server.close().unwrap();
    assert!(!server.present().contains(3));
    for member in members.into_iter().take(3) {
        server
            .accept_member(&member.respond(server.present()).unwrap())
            .unwrap();
    }
    assert_eq!(server.finish().unwrap().sum, plain_sum(&inputs[..3]));

    // A truncated or oversized sealed share never decodes into a message.
    let mut short = msgs[0].to_bytes(&s.round);
    short.pop();
    assert!(ClientMessage::from_bytes(&s.round, &short).is_err());
    let mut long = msgs[0].to_bytes(&s.round);
    long.push(0);
    assert!(ClientMessage::from_bytes(&s.round, &long).is_err());
}

#[test]
fn member_sum_over_another_set_is_refused() {
    let s = setup(params(), 6);
    let inputs = random_inputs(&mut rng(6), 5, 16, 10);
    let msgs = client_messages(&s, &inputs, 0);
    let mut server = ServerCollecting::new(&s.round);
    for m in &msgs {
        server.accept(m).unwrap();
    }
    let mut server = server.close().unwrap();
    let smaller = PresentSet::new(&s.round, vec![0, 1, 2, 3]).unwrap();
    let answer = member_answer(&s, 1, &msgs, &smaller).unwrap();
    assert_eq!(
        server.accept_member(&answer).unwrap_err(),
        Error::MemberSetMismatch(1)
    );
    // The declared set with a client the member has no share of: the member refuses.
    let mut member = CommitteeMember::new(&s.round, 2, &s.keys[1]).unwrap();
    for m in &msgs[..4] {
        member
            .accept_share(m.client(), m.sealed_share(2).unwrap())
            .unwrap();
    }
    assert!(matches!(
        member.respond(server.present()),
        Err(Error::DeclaredSet(_))
    ));
    // Duplicate member message.
    let a3 = member_answer(&s, 3, &msgs, server.present()).unwrap();
    server.accept_member(&a3).unwrap();
    assert_eq!(
        server.accept_member(&a3).unwrap_err(),
        Error::DuplicateMember(3)
    );
    // Nothing was released by the refused messages: still need three members.
    assert_eq!(
        server.finish().unwrap_err(),
        Error::NotEnoughMembers { have: 1, need: 3 }
    );
}

#[test]
fn members_refuse_too_small_sets_and_wrong_keys() {
    let s = setup(params().with_min_clients(3).unwrap(), 7);
    let msgs = client_messages(&s, &random_inputs(&mut rng(7), 2, 16, 10), 0);
    let present = PresentSet::new(&s.round, vec![0, 1]).unwrap();
    assert_eq!(
        member_answer(&s, 1, &msgs, &present).unwrap_err(),
        Error::TooFewClients { have: 2, need: 3 }
    );
    let mut server = ServerCollecting::new(&s.round);
    for m in &msgs {
        server.accept(m).unwrap();
    }
    assert!(matches!(server.close(), Err(Error::TooFewClients { .. })));
    let stranger = SealKeyPair::generate();
    assert!(CommitteeMember::new(&s.round, 1, &stranger).is_err());
    assert_eq!(
        CommitteeMember::new(&s.round, 6, &s.keys[0]).unwrap_err(),
        Error::UnknownMember(6)
    );
    assert_eq!(
        CommitteeMember::new(&s.round, 0, &s.keys[0]).unwrap_err(),
        Error::UnknownMember(0)
    );
}

#[test]
fn encodings_round_trip_and_refuse_tampering() {
    let s = setup(params(), 8);
    let msgs = client_messages(&s, &random_inputs(&mut rng(8), 3, 16, 10), 0);
    let bytes = msgs[0].to_bytes(&s.round);
    assert_eq!(bytes.len(), ClientMessage::encoded_len(&s.round));
    assert_eq!(
        ClientMessage::from_bytes(&s.round, &bytes).unwrap(),
        msgs[0]
    );
    let present = PresentSet::new(&s.round, vec![2, 0, 1]).unwrap();
    assert_eq!(present.clients(), &[0, 1, 2]);
    assert_eq!(
        PresentSet::from_bytes(&s.round, &present.to_bytes()).unwrap(),
        present
    );
    assert!(PresentSet::new(&s.round, vec![1, 1]).is_err());
    let answer = member_answer(&s, 2, &msgs, &present).unwrap();
    let ab = answer.to_bytes(&s.round);
    assert_eq!(ab.len(), MemberMessage::encoded_len(&s.round));
    assert_eq!(MemberMessage::from_bytes(&s.round, &ab).unwrap(), answer);
    // A masked value at or above p is not canonical.
    let mut big = bytes.clone();
    let p = s.round.params().ring().output_modulus().value();
    set_first_masked(&s.round, &mut big, p);
    assert_eq!(first_masked(&s.round, &big), p);
    assert!(matches!(
        ClientMessage::from_bytes(&s.round, &big),
        Err(Error::Malformed { .. })
    ));
    // The server's byte fast path refuses it too and keeps its sum intact.
    let mut server = ServerCollecting::new(&s.round);
    server.accept_bytes(&msgs[1].to_bytes(&s.round)).unwrap();
    let before = server.snapshot();
    assert!(matches!(
        server.accept_bytes(&big),
        Err(Error::Malformed { .. })
    ));
    assert_eq!(server.snapshot(), before);
    assert_eq!(
        server
            .accept_bytes(&msgs[1].to_bytes(&s.round))
            .unwrap_err(),
        Error::DuplicateClient(1)
    );
    // Unknown member index.
    let mut am = ab.clone();
    am[4 + 1 + 32] = 9;
    assert_eq!(
        MemberMessage::from_bytes(&s.round, &am).unwrap_err(),
        Error::UnknownMember(9)
    );
    // Oversized inputs are refused before any parsing.
    assert!(PresentSet::from_bytes(&s.round, &vec![0u8; 1 << 20]).is_err());
    assert!(Round::from_bytes(&vec![0u8; 1 << 20]).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn decoders_never_panic_on_mutated_bytes(pos in any::<prop::sample::Index>(), val in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let s = setup(RoundParams::new(4, 8, 4, 3, 1).unwrap(), 9);
        let msg = client_messages(&s, &[vec![1, 2, 3, 4]], 0).remove(0);
        let mut b = msg.to_bytes(&s.round);
        let i = pos.index(b.len());
        b[i] = val;
        let _ = ClientMessage::from_bytes(&s.round, &b);
        let _ = ClientMessage::from_bytes(&s.round, &b[..cut.index(b.len())]);
        let present = PresentSet::new(&s.round, vec![0]).unwrap();
        let ans = member_answer(&s, 1, &[msg], &present).unwrap();
        let mut a = ans.to_bytes(&s.round);
        let j = pos.index(a.len());
        a[j] = val;
        let _ = MemberMessage::from_bytes(&s.round, &a);
        let _ = MemberMessage::from_bytes(&s.round, &a[..cut.index(a.len())]);
        let _ = PresentSet::from_bytes(&s.round, &a);
        let _ = Round::from_bytes(&a);
        let _ = ServerCollecting::restore(&s.round, &a);
    }
}
