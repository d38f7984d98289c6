//! The aggregation service over real gRPC on port 0: through the router, with dropouts and silent
//! members; too few members; bad inputs and their codes; restarts mid-round.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{path::PathBuf, sync::Arc, time::Duration};

use bytes::Bytes;
use rand::Rng;
use tokio::{net::TcpListener, task::JoinHandle};
use tonic::{Code, service::RoutesBuilder};
use veilgrid_aggregation::{CommitteeMember, PresentSet, Round};
use veilgrid_aggregator::{
    AggError, AggregatorConfig,
    client::{self, AggClient},
    member::{Member, Outcome},
    signing,
};
use veilgrid_kit::{
    Shutdown,
    clock::now_ms,
    identity::Identity,
    registration::{self, RegistrationConfig},
};
use veilgrid_proto::aggregation::v1 as pb;
use veilgrid_router::RouterConfig;

async fn bind() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    (l, url)
}

async fn start_router(sd: &Shutdown) -> String {
    let (l, url) = bind().await;
    let config = RouterConfig {
        health_interval: Duration::from_millis(200),
        min_ttl: Duration::from_millis(100),
        ..RouterConfig::default()
    };
    tokio::spawn(veilgrid_router::run(l, sd.clone(), config));
    url
}

struct Agg {
    url: String,
    sd: Shutdown,
    task: JoinHandle<Result<(), AggError>>,
}

impl Agg {
    async fn stop(self) {
        self.sd.cancel();
        self.task.await.unwrap().unwrap();
    }
}

async fn start_aggregator(data_dir: Option<PathBuf>, router: Option<String>) -> Agg {
    let (l, url) = bind().await;
    let sd = Shutdown::new();
    let config = AggregatorConfig {
        data_dir,
        router,
        ttl: Duration::from_secs(5),
        ..AggregatorConfig::default()
    };
    let task = tokio::spawn(veilgrid_aggregator::run(l, sd.clone(), config));
    // Wait until it answers.
    let mut c = AggClient::direct(&url).unwrap();
    for _ in 0..100 {
        match c.get_round(&[0; 32]).await {
            Err(s) if s.code() == Code::NotFound => break,
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    Agg { url, sd, task }
}

/// A member served as a provider and registered with the router, reaching the aggregator
/// through the router.
async fn start_member(router: &str, name: &str, sd: &Shutdown) -> Arc<Member> {
    let m = Member::new(
        Arc::new(Identity::generate()),
        AggClient::via_router(router).unwrap(),
    );
    let provider = m.provider(name);
    let (l, url) = bind().await;
    let mut routes = RoutesBuilder::default();
    routes.add_service(provider.clone().into_server());
    tokio::spawn(veilgrid_kit::server::serve(l, sd.clone(), routes));
    registration::start(
        provider,
        RegistrationConfig {
            router: router.into(),
            endpoint: url,
            ttl: Duration::from_secs(5),
        },
        sd.clone(),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    m
}

fn random_inputs(n: usize, len: usize, bits: u32) -> Vec<Vec<u64>> {
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| (0..len).map(|_| rng.gen_range(0..1u64 << bits)).collect())
        .collect()
}

fn plain_sum(inputs: &[Vec<u64>]) -> Vec<u64> {
    let mut s = vec![0u64; inputs[0].len()];
    for v in inputs {
        for (a, b) in s.iter_mut().zip(v) {
            *a += b;
        }
    }
    s
}

fn answered(outcomes: &[Outcome]) -> usize {
    outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Answered(_)))
        .count()
}

/// Let `members` work (check their shares, then answer) until `want` of them answered or 10 s
/// passed; the number of answers.
async fn settle_until(members: &[Arc<Member>], want: usize) -> usize {
    let mut done = vec![false; members.len()];
    let give_up = tokio::time::Instant::now() + Duration::from_secs(10);
    while done.iter().filter(|d| **d).count() < want && tokio::time::Instant::now() < give_up {
        for (m, d) in members.iter().zip(done.iter_mut()) {
            if !*d && answered(&m.work_once().await.unwrap()) > 0 {
                *d = true;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done.iter().filter(|d| **d).count()
}

/// [`settle_until`] every member answered.
async fn settle(members: &[Arc<Member>]) -> usize {
    settle_until(members, members.len()).await
}

struct RouterRound {
    sd: Shutdown,
    agg: Agg,
    members: Vec<Arc<Member>>,
    client: AggClient,
    info: pb::RoundInfo,
    inputs: Vec<Vec<u64>>,
}

/// Router, aggregator and 5 members (t = 2); a round of at most 8 clients of which 6 submit
/// through the router and 2 never send; the deadline passes.
async fn router_round() -> RouterRound {
    let sd = Shutdown::new();
    let router = start_router(&sd).await;
    let agg = start_aggregator(None, Some(router.clone())).await;
    let mut members = Vec::new();
    for i in 0..5 {
        members.push(start_member(&router, &format!("member-{i}"), &sd).await);
    }
    let keys = client::committee_keys(&router, 5).await.unwrap();
    assert_eq!(keys.len(), 5);
    let mut client = AggClient::via_router(&router).unwrap();
    let deadline = now_ms() + 1500;
    let mut req = pb::CreateRoundRequest {
        length: 16,
        bits: 12,
        max_clients: 8,
        threshold: 2,
        deadline_unix_ms: deadline,
        member_deadline_unix_ms: deadline + 20_000,
        check_window_ms: 300,
        ..Default::default()
    };
    client::CommitteeKeys::fill(&keys, &mut req);
    let info = client.create_round(req).await.unwrap();
    assert_eq!(info.state, "collecting");
    let inputs = random_inputs(6, 16, 12);
    for (i, x) in inputs.iter().enumerate() {
        // Each client learns the round from the service, then builds its message locally.
        let seen = client.get_round(&info.round_id).await.unwrap();
        let req = client::build_submission(&seen, i as u64 + 1, x).unwrap();
        let r = client.submit(req).await.unwrap();
        assert_eq!(r.submitted, i as u32 + 1);
    }
    // Clients 7 and 8 never send. Members have nothing to do before the deadline.
    assert_eq!(answered(&members[0].work_once().await.unwrap()), 0);
    tokio::time::sleep(Duration::from_millis(
        deadline.saturating_sub(now_ms()) + 50,
    ))
    .await;
    RouterRound {
        sd,
        agg,
        members,
        client,
        info,
        inputs,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_through_router_with_dropouts_late_client_and_silent_members() {
    let mut r = router_round().await;
    // A client after the deadline is refused and does not disturb the round.
    let late = client::build_submission(&r.info, 9, &[1; 16]).unwrap();
    let err = r.client.submit(late).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    // Three of five members answer; two stay silent (they neither check nor answer, so the
    // set is declared when the check window ends).
    assert_eq!(settle(&r.members[..3]).await, 3);
    let res = r.client.result(&r.info.round_id).await.unwrap();
    assert_eq!(res.sum, plain_sum(&r.inputs));
    assert_eq!(res.counted, (1..=6).collect::<Vec<u64>>());
    assert_eq!(res.members.len(), 3);
    // A member that answers again gets nothing to do; the result is stable.
    assert_eq!(answered(&r.members[0].work_once().await.unwrap()), 0);
    let again = r.client.result(&r.info.round_id).await.unwrap();
    assert_eq!(again, res);
    let info = r.client.get_round(&r.info.round_id).await.unwrap();
    assert_eq!(info.state, "finished");
    r.agg.stop().await;
    r.sd.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fewer_than_t_plus_one_members_release_nothing() {
    let mut r = router_round().await;
    assert_eq!(settle(&r.members[..2]).await, 2);
    let err = r.client.result(&r.info.round_id).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("no sum is released"), "{err:?}");
    let info = r.client.get_round(&r.info.round_id).await.unwrap();
    assert_eq!(info.state, "awaiting_members");
    assert_eq!(info.members_answered.len(), 2);
    // A third member arrives later (before the member deadline): now the sum is released.
    assert_eq!(settle(&r.members[4..]).await, 1);
    let res = r.client.result(&r.info.round_id).await.unwrap();
    assert_eq!(res.sum, plain_sum(&r.inputs));
    r.agg.stop().await;
    r.sd.cancel();
}

fn identities(n: usize) -> Vec<Arc<Identity>> {
    (0..n).map(|_| Arc::new(Identity::generate())).collect()
}

fn keys(ids: &[Arc<Identity>]) -> Vec<Bytes> {
    ids.iter()
        .map(|i| Bytes::copy_from_slice(&i.seal_public().to_bytes()))
        .collect()
}

fn signing_keys(ids: &[Arc<Identity>]) -> Vec<Bytes> {
    ids.iter()
        .map(|i| Bytes::copy_from_slice(&i.provider_id()))
        .collect()
}

fn create_req(ids: &[Arc<Identity>], length: u32, max_clients: u32) -> pb::CreateRoundRequest {
    pb::CreateRoundRequest {
        length,
        bits: 8,
        max_clients,
        threshold: 1,
        committee_keys: keys(ids),
        committee_signing_keys: signing_keys(ids),
        deadline_unix_ms: now_ms() + 60_000,
        check_window_ms: 300,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_the_right_codes_and_do_not_corrupt_the_round() {
    let agg = start_aggregator(None, None).await;
    let mut c = AggClient::direct(&agg.url).unwrap();
    let ids = identities(3);

    // Bad round parameters.
    let mut bad = create_req(&ids, 4, 3);
    bad.threshold = 3;
    assert_eq!(
        c.create_round(bad).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    let mut bad = create_req(&ids, 4, 3);
    bad.committee_keys[1] = Bytes::from_static(b"short");
    assert_eq!(
        c.create_round(bad).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    let mut bad = create_req(&ids, 4, 3);
    bad.deadline_unix_ms = now_ms() - 1;
    assert_eq!(
        c.create_round(bad).await.unwrap_err().code(),
        Code::InvalidArgument
    );

    let a = c.create_round(create_req(&ids, 4, 3)).await.unwrap();
    let b = c.create_round(create_req(&ids, 5, 3)).await.unwrap();
    let twin = c.create_round(create_req(&ids, 4, 3)).await.unwrap();

    // Unknown round, malformed id.
    assert_eq!(
        c.get_round(&[7; 32]).await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(
        c.result(&[7; 3]).await.unwrap_err().code(),
        Code::InvalidArgument
    );

    // Entries over the bound are refused by the client library before anything is sent.
    let e = client::build_submission(&a, 1, &[1, 2, 256, 3]).unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = client::build_submission(&a, 1, &[1, 2, 3]).unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    // Wrong vector length: a message of the 5-entry round sent to the 4-entry one.
    let mut wrong = client::build_submission(&b, 1, &[1; 5]).unwrap();
    wrong.round_id = a.round_id.clone();
    let err = c.submit(wrong).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");

    // Replay from another round with the same parameters.
    let mut replay = client::build_submission(&twin, 1, &[1; 4]).unwrap();
    replay.round_id = a.round_id.clone();
    let err = c.submit(replay).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("another round"), "{err:?}");

    // Garbage of the right size.
    let good = client::build_submission(&a, 1, &[1, 2, 3, 4]).unwrap();
    let mut garbage = good.clone();
    garbage.message = vec![0xAB; good.message.len()].into();
    assert_eq!(
        c.submit(garbage).await.unwrap_err().code(),
        Code::InvalidArgument
    );

    // The good client, then a duplicate.
    assert_eq!(c.submit(good.clone()).await.unwrap().submitted, 1);
    let dup = client::build_submission(&a, 1, &[9, 9, 9, 9]).unwrap();
    assert_eq!(c.submit(dup).await.unwrap_err().code(), Code::AlreadyExists);

    // Result while collecting.
    assert_eq!(
        c.result(&a.round_id).await.unwrap_err().code(),
        Code::FailedPrecondition
    );

    // Two more clients fill the round (N = 3): it closes; a fourth is refused.
    c.submit(client::build_submission(&a, 2, &[10, 20, 30, 40]).unwrap())
        .await
        .unwrap();
    c.submit(client::build_submission(&a, 3, &[100, 100, 100, 100]).unwrap())
        .await
        .unwrap();
    let late = client::build_submission(&a, 4, &[1; 4]).unwrap();
    assert_eq!(
        c.submit(late).await.unwrap_err().code(),
        Code::FailedPrecondition
    );

    // Collection closed: members check their shares first (all good), then the set is declared.
    let m2 = Member::new(ids[1].clone(), c.clone());
    let m3 = Member::new(ids[2].clone(), c.clone());
    let m1 = Member::new(ids[0].clone(), c.clone());
    for m in [&m1, &m2, &m3] {
        let o = m.work_once().await.unwrap();
        assert!(
            matches!(&o[..], [Outcome::Checked(_, bad)] if bad.is_empty()),
            "{o:?}"
        );
    }

    // A member summing over a set other than the declared one is refused.
    // (Other rounds of this test still collect: members are sent those too, phase "collect".)
    let work = c.member_work(&ids[0].seal_public()).await.unwrap();
    let answering: Vec<_> = work.rounds.iter().filter(|w| w.phase == "answer").collect();
    assert_eq!(answering.len(), 1);
    let w = answering[0];
    let round = Round::from_bytes(&w.round).unwrap();
    let mut cm = CommitteeMember::new(&round, w.member as u16, &ids[0].sealing).unwrap();
    for s in &w.shares {
        cm.accept_share(s.client, &s.sealed).unwrap();
    }
    let other = PresentSet::new(&round, vec![1, 2]).unwrap();
    let msg = cm.respond(&other).unwrap().to_bytes(&round);
    let rid: [u8; 32] = a.round_id[..].try_into().unwrap();
    let sig = signing::sign(&ids[0].signing, &signing::answer_bytes(&rid, &msg));
    let err = c
        .member_respond(pb::MemberRespondRequest {
            round_id: a.round_id.clone(),
            message: msg.into(),
            signature: Bytes::copy_from_slice(&sig),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(
        err.message().contains("different from the declared"),
        "{err:?}"
    );

    // Members 2 and 3 answer properly; member 2 again is a duplicate.
    assert_eq!(answered(&m2.work_once().await.unwrap()), 1);
    let work = c.member_work(&ids[1].seal_public()).await.unwrap();
    assert!(work.rounds.iter().all(|w| w.phase == "collect"));
    assert_eq!(answered(&m3.work_once().await.unwrap()), 1);
    let res = c.result(&a.round_id).await.unwrap();
    assert_eq!(res.sum, vec![111, 122, 133, 144]);
    assert_eq!(res.counted, vec![1, 2, 3]);
    // Member answers after the end are refused.
    let err = c
        .member_respond(pb::MemberRespondRequest {
            round_id: a.round_id.clone(),
            message: Bytes::from_static(b"x"),
            signature: Bytes::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    agg.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rounds_survive_restarts_mid_round() {
    let dir = tempfile::tempdir().unwrap();
    let ids = identities(3);
    let inputs = random_inputs(3, 8, 8);

    let agg = start_aggregator(Some(dir.path().into()), None).await;
    let mut c = AggClient::direct(&agg.url).unwrap();
    let info = c.create_round(create_req(&ids, 8, 3)).await.unwrap();
    for (i, x) in inputs.iter().enumerate().take(2) {
        c.submit(client::build_submission(&info, i as u64 + 1, x).unwrap())
            .await
            .unwrap();
    }
    agg.stop().await;

    // Restart while collecting.
    let agg = start_aggregator(Some(dir.path().into()), None).await;
    let mut c = AggClient::direct(&agg.url).unwrap();
    let seen = c.get_round(&info.round_id).await.unwrap();
    assert_eq!(seen.submitted, 2);
    assert_eq!(seen.round, info.round);
    // The duplicate check survived the restart too.
    let dup = client::build_submission(&seen, 2, &inputs[0]).unwrap();
    assert_eq!(c.submit(dup).await.unwrap_err().code(), Code::AlreadyExists);
    c.submit(client::build_submission(&seen, 3, &inputs[2]).unwrap())
        .await
        .unwrap();
    // The round is full: members check; one report arrives before the restart.
    let m1 = Member::new(ids[0].clone(), c.clone());
    let o = m1.work_once().await.unwrap();
    assert!(matches!(&o[..], [Outcome::Checked(..)]), "{o:?}");
    agg.stop().await;

    // Restart while checking: the report survived, the rest of the committee checks.
    let agg = start_aggregator(Some(dir.path().into()), None).await;
    let mut c = AggClient::direct(&agg.url).unwrap();
    let seen = c.get_round(&info.round_id).await.unwrap();
    assert_eq!(seen.state, "checking");
    assert_eq!(seen.members_checked, vec![1]);
    let m1 = Member::new(ids[0].clone(), c.clone());
    let m3 = Member::new(ids[2].clone(), c.clone());
    let m2 = Member::new(ids[1].clone(), c.clone());
    for m in [&m3, &m2] {
        let o = m.work_once().await.unwrap();
        assert!(matches!(&o[..], [Outcome::Checked(..)]), "{o:?}");
    }
    // Every member reported: the set is declared at once; m1 (fresh process) answers.
    assert_eq!(answered(&m1.work_once().await.unwrap()), 1);
    agg.stop().await;

    // Restart while awaiting members.
    let agg = start_aggregator(Some(dir.path().into()), None).await;
    let mut c = AggClient::direct(&agg.url).unwrap();
    let seen = c.get_round(&info.round_id).await.unwrap();
    assert_eq!(seen.state, "awaiting_members");
    assert_eq!(seen.members_answered, vec![1]);
    let m3 = Member::new(ids[2].clone(), c.clone());
    assert_eq!(answered(&m3.work_once().await.unwrap()), 1);
    let res = c.result(&info.round_id).await.unwrap();
    assert_eq!(res.sum, plain_sum(&inputs));
    agg.stop().await;

    // And the result itself survives.
    let agg = start_aggregator(Some(dir.path().into()), None).await;
    let mut c = AggClient::direct(&agg.url).unwrap();
    assert_eq!(c.result(&info.round_id).await.unwrap(), res);
    agg.stop().await;
}

/// A client message whose sealed share for the last member is corrupted (the last bytes of a
/// plain-round message are that share's AEAD tag, then the attachment flag).
fn with_bad_last_share(mut req: pb::SubmitRequest) -> pb::SubmitRequest {
    let mut b = req.message.to_vec();
    let n = b.len();
    b[n - 2] ^= 0x55;
    req.message = b.into();
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_share_excludes_the_client_not_the_round() {
    let agg = start_aggregator(None, None).await;
    let mut c = AggClient::direct(&agg.url).unwrap();
    let ids = identities(3);
    let a = c.create_round(create_req(&ids, 6, 4)).await.unwrap();
    let inputs = random_inputs(4, 6, 8);
    for (i, x) in inputs.iter().enumerate() {
        let mut req = client::build_submission(&a, i as u64 + 1, x).unwrap();
        if i == 1 {
            // The server cannot open shares: it accepts the message.
            req = with_bad_last_share(req);
        }
        c.submit(req).await.unwrap();
    }
    let rid: [u8; 32] = a.round_id[..].try_into().unwrap();
    let members: Vec<_> = ids
        .iter()
        .map(|i| Member::new(i.clone(), c.clone()))
        .collect();

    // Reports that are not the member's own are refused and change nothing.
    let forged = signing::sign(&ids[0].signing, &signing::check_bytes(&rid, 2, &[3]));
    let err = c
        .member_check(pb::MemberCheckRequest {
            round_id: a.round_id.clone(),
            member: 2,
            bad: vec![pb::BadShare {
                client: 3,
                reason: "forged".into(),
            }],
            signature: Bytes::copy_from_slice(&forged),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    // A member reporting a client the round never accepted.
    let sig = signing::sign(&ids[0].signing, &signing::check_bytes(&rid, 1, &[77]));
    let err = c
        .member_check(pb::MemberCheckRequest {
            round_id: a.round_id.clone(),
            member: 1,
            bad: vec![pb::BadShare {
                client: 77,
                reason: String::new(),
            }],
            signature: Bytes::copy_from_slice(&sig),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");

    // Members 1 and 2 find nothing wrong; member 3 reports client 2.
    let mut reports = Vec::new();
    for (i, m) in members.iter().enumerate() {
        match &m.work_once().await.unwrap()[..] {
            [Outcome::Checked(_, bad)] => reports.push(bad.clone()),
            o => panic!("{o:?}"),
        }
        if i == 0 {
            // A second report from member 1 is a duplicate.
            let sig = signing::sign(&ids[0].signing, &signing::check_bytes(&rid, 1, &[2]));
            let err = c
                .member_check(pb::MemberCheckRequest {
                    round_id: a.round_id.clone(),
                    member: 1,
                    bad: vec![pb::BadShare {
                        client: 2,
                        reason: String::new(),
                    }],
                    signature: Bytes::copy_from_slice(&sig),
                })
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
        }
    }
    assert_eq!(reports, vec![vec![], vec![], vec![2]]);
    let info = c.get_round(&a.round_id).await.unwrap();
    assert_eq!(info.state, "awaiting_members");
    assert_eq!(info.excluded, vec![2]);

    // Every member (including the one that got the bad share) answers over the other three.
    assert_eq!(
        settle_until(&members, 2).await,
        2,
        "t + 1 = 2 answers finish the round"
    );
    let res = c.result(&a.round_id).await.unwrap();
    let others: Vec<Vec<u64>> = [0, 2, 3].iter().map(|&i| inputs[i].clone()).collect();
    assert_eq!(res.sum, plain_sum(&others));
    assert_eq!(res.counted, vec![1, 3, 4]);
    assert_eq!(res.excluded, vec![2]);
    agg.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_answers_must_carry_the_members_signature() {
    let agg = start_aggregator(None, None).await;
    let mut c = AggClient::direct(&agg.url).unwrap();
    let ids = identities(3);
    let a = c.create_round(create_req(&ids, 4, 2)).await.unwrap();
    c.submit(client::build_submission(&a, 1, &[1, 2, 3, 4]).unwrap())
        .await
        .unwrap();
    c.submit(client::build_submission(&a, 2, &[5, 6, 7, 8]).unwrap())
        .await
        .unwrap();
    let members: Vec<_> = ids
        .iter()
        .map(|i| Member::new(i.clone(), c.clone()))
        .collect();
    for m in &members {
        m.work_once().await.unwrap();
    }
    // A correct share sum for member 1, signed by member 2's key: refused, slot not taken.
    let w = c.member_work(&ids[0].seal_public()).await.unwrap();
    let w = &w.rounds[0];
    let round = Round::from_bytes(&w.round).unwrap();
    let mut cm = CommitteeMember::new(&round, 1, &ids[0].sealing).unwrap();
    for s in &w.shares {
        cm.accept_share(s.client, &s.sealed).unwrap();
    }
    let present = PresentSet::from_bytes(&round, &w.present_set).unwrap();
    let msg = cm.respond(&present).unwrap().to_bytes(&round);
    let rid: [u8; 32] = a.round_id[..].try_into().unwrap();
    for (signer, sig_round) in [(&ids[1], rid), (&ids[0], [9u8; 32])] {
        let sig = signing::sign(&signer.signing, &signing::answer_bytes(&sig_round, &msg));
        let err = c
            .member_respond(pb::MemberRespondRequest {
                round_id: a.round_id.clone(),
                message: msg.clone().into(),
                signature: Bytes::copy_from_slice(&sig),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    }
    let info = c.get_round(&a.round_id).await.unwrap();
    assert!(info.members_answered.is_empty());
    // The members themselves still answer and the sum comes out.
    assert_eq!(settle(&members[..2]).await, 2);
    assert_eq!(c.result(&a.round_id).await.unwrap().sum, vec![6, 8, 10, 12]);
    agg.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_member_deadline_answers_are_ignored_and_nothing_is_released() {
    let agg = start_aggregator(None, None).await;
    let mut c = AggClient::direct(&agg.url).unwrap();
    let ids = identities(3);
    let mut req = create_req(&ids, 4, 2);
    req.threshold = 1;
    req.deadline_unix_ms = now_ms() + 400;
    req.check_window_ms = 200;
    req.member_deadline_unix_ms = req.deadline_unix_ms + 1200;
    let member_deadline = req.member_deadline_unix_ms;
    let a = c.create_round(req).await.unwrap();
    assert_eq!(a.member_deadline_unix_ms, member_deadline);
    for i in 1..=2 {
        c.submit(client::build_submission(&a, i, &[i; 4]).unwrap())
            .await
            .unwrap();
    }
    let members: Vec<_> = ids
        .iter()
        .map(|i| Member::new(i.clone(), c.clone()))
        .collect();
    for m in &members {
        m.work_once().await.unwrap();
    }
    // One answer (t + 1 = 2 needed) before the member deadline.
    assert_eq!(answered(&members[0].work_once().await.unwrap()), 1);
    tokio::time::sleep(Duration::from_millis(
        member_deadline.saturating_sub(now_ms()) + 50,
    ))
    .await;
    let err = c.result(&a.round_id).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("member deadline"), "{err:?}");
    assert!(err.message().contains("no sum is released"), "{err:?}");
    // The second member is late: it gets no more work, and a late answer is refused.
    let work = c.member_work(&ids[1].seal_public()).await.unwrap();
    assert!(work.rounds.is_empty());
    let err = c
        .member_respond(pb::MemberRespondRequest {
            round_id: a.round_id.clone(),
            message: Bytes::from_static(b"late"),
            signature: Bytes::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(
        err.message().contains("late answers are ignored"),
        "{err:?}"
    );
    assert_eq!(c.get_round(&a.round_id).await.unwrap().state, "failed");
    agg.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifiable_round_releases_a_transcript_that_audits_and_refuses_bad_proofs() {
    use veilgrid_aggregation::AuditTranscript;
    let agg = start_aggregator(None, None).await;
    let mut c = AggClient::direct(&agg.url).unwrap();
    let ids = identities(3);
    let mut req = create_req(&ids, 4, 3);
    req.verifiable = true;
    let a = c.create_round(req).await.unwrap();
    assert!(a.verifiable);
    let inputs = random_inputs(3, 4, 8);
    let first = client::build_submission(&a, 1, &inputs[0]).unwrap();
    // Client 1's proof under another client id: the range proof does not verify for it.
    let mut stolen = first.message.to_vec();
    stolen[37..45].copy_from_slice(&99u64.to_le_bytes());
    let err = c
        .submit(pb::SubmitRequest {
            round_id: a.round_id.clone(),
            message: stolen.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("range proof"), "{err:?}");
    c.submit(first).await.unwrap();
    for (i, x) in inputs.iter().enumerate().skip(1) {
        c.submit(client::build_submission(&a, i as u64 + 1, x).unwrap())
            .await
            .unwrap();
    }
    let members: Vec<_> = ids
        .iter()
        .map(|i| Member::new(i.clone(), c.clone()))
        .collect();
    assert_eq!(settle_until(&members, 2).await, 2);
    let res = c.result(&a.round_id).await.unwrap();
    assert_eq!(res.sum, plain_sum(&inputs));
    assert_eq!(res.blindings.len(), 4);
    // The auditor re-checks the round offline from the transcript alone.
    let round = Round::from_bytes(&a.round).unwrap();
    let t = AuditTranscript::from_bytes(&round, &res.transcript).unwrap();
    t.verify(&round).unwrap();
    assert_eq!(t.sum, res.sum);
    assert_eq!(t.clients.len(), 3);
    // A transcript claiming another sum does not audit.
    let mut forged = t.clone();
    forged.sum[0] += 1;
    assert!(forged.verify(&round).is_err());
    agg.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_store_holds_no_share_it_can_open() {
    use veilgrid_aggregation::round::SHARE_SEAL_INFO;
    let dir = tempfile::tempdir().unwrap();
    let agg = start_aggregator(Some(dir.path().into()), None).await;
    let mut c = AggClient::direct(&agg.url).unwrap();
    let ids = identities(3);
    let a = c.create_round(create_req(&ids, 4, 2)).await.unwrap();
    let round = Round::from_bytes(&a.round).unwrap();
    for i in 1..=2 {
        c.submit(client::build_submission(&a, i, &[i; 4]).unwrap())
            .await
            .unwrap();
    }
    agg.stop().await;
    // Everything the server keeps, read straight from its store, with its own identity.
    let server = Identity::load_or_create(dir.path()).unwrap();
    let db = rusqlite::Connection::open(dir.path().join("aggregator.sqlite3")).unwrap();
    let mut st = db
        .prepare("SELECT client, member, sealed FROM shares")
        .unwrap();
    let rows: Vec<(u64, u16, Vec<u8>)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 6);
    for (client, member, sealed) in &rows {
        let aad = round.share_aad(*client, *member);
        // Neither the server's key nor another member's opens it; its own member's key does.
        assert!(server.sealing.open(SHARE_SEAL_INFO, &aad, sealed).is_err());
        let other = &ids[(*member as usize) % 3];
        assert!(other.sealing.open(SHARE_SEAL_INFO, &aad, sealed).is_err());
        let own = &ids[*member as usize - 1];
        assert!(own.sealing.open(SHARE_SEAL_INFO, &aad, sealed).is_ok());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_open_shares_while_the_round_collects_and_a_restarted_member_catches_up() {
    let agg = start_aggregator(None, None).await;
    let mut c = AggClient::direct(&agg.url).unwrap();
    let ids = identities(3);
    let a = c.create_round(create_req(&ids, 4, 5)).await.unwrap();
    let rid: [u8; 32] = a.round_id[..].try_into().unwrap();
    let inputs = random_inputs(5, 4, 8);
    for (i, x) in inputs[..2].iter().enumerate() {
        c.submit(client::build_submission(&a, i as u64 + 1, x).unwrap())
            .await
            .unwrap();
    }
    let m1 = Member::new(ids[0].clone(), c.clone());
    let m2 = Member::new(ids[1].clone(), c.clone());
    let m3 = Member::new(ids[2].clone(), c.clone());
    // While collecting, members 1 and 2 open the two shares that arrived.
    for m in [&m1, &m2] {
        let o = m.work_once().await.unwrap();
        assert!(
            matches!(&o[..], [Outcome::Collected(id, 2)] if *id == rid),
            "{o:?}"
        );
        assert_eq!(m.shares_opened(), 2);
    }
    // With its cursor a member is sent no share twice.
    let w = c
        .member_work_after(
            &ids[0].seal_public(),
            vec![pb::ShareCursor {
                round_id: a.round_id.clone(),
                seq: 2,
            }],
        )
        .await
        .unwrap();
    assert_eq!(w.rounds.len(), 1);
    assert_eq!(w.rounds[0].phase, "collect");
    assert!(w.rounds[0].shares.is_empty());
    assert!(m1.work_once().await.unwrap().is_empty());
    assert_eq!(m1.shares_opened(), 2);
    // One more client: only its share is opened.
    c.submit(client::build_submission(&a, 3, &inputs[2]).unwrap())
        .await
        .unwrap();
    let o = m1.work_once().await.unwrap();
    assert!(matches!(&o[..], [Outcome::Collected(_, 1)]), "{o:?}");
    // Member 2 restarts (its opened shares are gone); the round fills and closes.
    drop(m2);
    let m2 = Member::new(ids[1].clone(), c.clone());
    for (i, x) in inputs.iter().enumerate().skip(3) {
        c.submit(client::build_submission(&a, i as u64 + 1, x).unwrap())
            .await
            .unwrap();
    }
    for m in [&m1, &m2, &m3] {
        let o = m.work_once().await.unwrap();
        assert!(
            matches!(&o[..], [Outcome::Checked(_, bad)] if bad.is_empty()),
            "{o:?}"
        );
    }
    // Member 1 opened the last two at the check; the restarted member and the late one all five.
    assert_eq!(m1.shares_opened(), 5);
    assert_eq!(m2.shares_opened(), 5);
    assert_eq!(m3.shares_opened(), 5);
    // Answering opens nothing more: the answer is the running sum over the declared set.
    assert_eq!(settle(&[m1.clone(), m2.clone()]).await, 2);
    assert_eq!(m1.shares_opened(), 5);
    assert_eq!(m2.shares_opened(), 5);
    let res = c.result(&a.round_id).await.unwrap();
    assert_eq!(res.sum, plain_sum(&inputs));
    assert_eq!(res.counted, vec![1, 2, 3, 4, 5]);
    agg.stop().await;
}
