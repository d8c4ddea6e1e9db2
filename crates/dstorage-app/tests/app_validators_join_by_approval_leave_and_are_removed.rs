//! Validator joins, approvals, leaves and removal votes through the real application (in-process harness: real
//! SQLite, real signatures, InitChain with a genesis set): every rule and edge case of docs/ARCHITECTURE.md,
//! "Validators", with the ValidatorUpdates FinalizeBlock returns and the app hash they enter.

mod common;

use common::{code, Wallet, CHAIN};
use dstorage_app::testing::{BlockOutcome, Harness};
use dstorage_app::validators::{RequestKind, RequestStatus};
use dstorage_app::AppConfig;
use dstorage_types::identity::KeyType;
use dstorage_types::result::ResultCode;
use dstorage_types::tx::Payload;

/// A validator or candidate: an ed25519 wallet (its CometBFT validator key) and a node id.
struct Val {
    wallet: Wallet,
    node_id: String,
}

impl Val {
    fn new(i: usize) -> Val {
        Val {
            wallet: Wallet::ed25519(),
            node_id: format!("{:040x}", 0xabc000 + i),
        }
    }
    fn key(&self) -> [u8; 32] {
        hex::decode(self.wallet.identity())
            .unwrap()
            .try_into()
            .unwrap()
    }
    fn join(&mut self) -> Vec<u8> {
        let payload = Payload::ValidatorJoin {
            node_id: self.node_id.clone(),
            address: "127.0.0.1:26656".into(),
        };
        self.wallet.tx(payload)
    }
    fn approve(&mut self, request: u64) -> Vec<u8> {
        self.wallet.tx(Payload::ValidatorApprove { request })
    }
    fn leave(&mut self) -> Vec<u8> {
        self.wallet.tx(Payload::ValidatorLeave)
    }
    fn remove(&mut self, target: &Val) -> Vec<u8> {
        self.wallet.tx(Payload::ValidatorRemove {
            key: target.key().to_vec(),
        })
    }
}

/// `n` genesis validators and one harness on a fresh database with them (node ids in the app state).
fn network(n: usize, expiry: u64) -> (tempfile::TempDir, Harness, Vec<Val>) {
    let dir = tempfile::tempdir().unwrap();
    let vals: Vec<Val> = (0..n).map(Val::new).collect();
    let h = start(&dir, &vals, expiry, "a");
    (dir, h, vals)
}

fn app_state(vals: &[Val], expiry: u64) -> Vec<u8> {
    let nodes: Vec<serde_json::Value> = vals
        .iter()
        .map(|v| serde_json::json!({"pub_key": v.wallet.identity(), "node_id": v.node_id}))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "validators": {"join_expiry_blocks": expiry, "nodes": nodes}
    }))
    .unwrap()
}

fn start(dir: &tempfile::TempDir, vals: &[Val], expiry: u64, db: &str) -> Harness {
    let keys: Vec<[u8; 32]> = vals.iter().map(Val::key).collect();
    Harness::start_network(
        AppConfig::new(dir.path().join(format!("{db}.sqlite"))),
        CHAIN,
        &keys,
        &app_state(vals, expiry),
    )
    .unwrap()
}

fn codes(b: &BlockOutcome) -> Vec<ResultCode> {
    b.results.iter().map(code).collect()
}

fn set_keys(h: &Harness) -> Vec<String> {
    h.app
        .reads()
        .validators()
        .unwrap()
        .validators
        .into_iter()
        .map(|v| v.pub_key)
        .collect()
}

fn sorted(mut keys: Vec<String>) -> Vec<String> {
    keys.sort();
    keys
}

fn request(h: &Harness, id: u64) -> dstorage_app::validators::Request {
    h.app
        .reads()
        .validator_requests(1000)
        .unwrap()
        .into_iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no request {id}"))
}

#[test]
fn a_join_needs_two_thirds_of_the_current_validators_and_then_reaches_cometbft() {
    let (_dir, h, mut vals) = network(4, 100);
    let mut cand = Val::new(9);
    let b = h.block(vec![cand.join()]).unwrap();
    assert_eq!(codes(&b), [ResultCode::Ok]);
    assert!(b.validator_updates.is_empty());
    let r = request(&h, 1);
    assert_eq!(
        (r.kind, r.status),
        (RequestKind::Join, RequestStatus::Pending)
    );
    assert_eq!(r.node_id.as_deref(), Some(cand.node_id.as_str()));
    assert_eq!(r.expires_at, 1 + 100);

    // Two of four approvals are not enough: ceil(2 × 4 / 3) = 3.
    let b = h
        .block(vec![vals[0].approve(1), vals[1].approve(1)])
        .unwrap();
    assert_eq!(codes(&b), [ResultCode::Ok, ResultCode::Ok]);
    assert!(b.validator_updates.is_empty(), "{:?}", b.validator_updates);
    assert_eq!(set_keys(&h).len(), 4);

    let before = b.app_hash;
    let b = h.block(vec![vals[2].approve(1)]).unwrap();
    assert_eq!(codes(&b), [ResultCode::Ok]);
    assert_eq!(b.validator_updates, vec![(cand.key().to_vec(), 10)]);
    assert_ne!(b.app_hash, before);
    let r = request(&h, 1);
    assert_eq!(r.status, RequestStatus::Approved);
    assert_eq!(r.decided_height, Some(b.height));
    let view = h.app.reads().validators().unwrap();
    let new = view
        .validators
        .iter()
        .find(|v| v.pub_key == cand.wallet.identity())
        .expect("candidate is a validator");
    assert_eq!(new.active_from, b.height + 2, "CometBFT applies it at H+2");
    assert_eq!(new.node_id.as_deref(), Some(cand.node_id.as_str()));

    // The new validator votes at once (the app's set changes in the deciding block).
    let mut other = Val::new(10);
    h.block(vec![other.join()]).unwrap();
    let b = h.block(vec![cand.approve(2)]).unwrap();
    assert_eq!(codes(&b), [ResultCode::Ok]);
    assert!(request(&h, 2).votes.contains(&cand.wallet.identity()));
}

#[test]
fn a_join_and_its_deciding_approvals_in_one_block_decide_there_on_every_node() {
    // Kwil had a divergence here: nodes disagreed on whether approvals in the join's own block counted.
    let dir = tempfile::tempdir().unwrap();
    let mut vals: Vec<Val> = (0..4).map(Val::new).collect();
    let a = start(&dir, &vals, 100, "a");
    let b = start(&dir, &vals, 100, "b");
    let mut cand = Val::new(9);
    // An approval placed before the join names a request that does not exist yet.
    let early = vals[3].approve(1);
    let txs = vec![
        early,
        cand.join(),
        vals[0].approve(1),
        vals[1].approve(1),
        vals[2].approve(1),
    ];
    let on_a = a.block(txs.clone()).unwrap();
    let on_b = b.block(txs).unwrap();
    assert_eq!(
        codes(&on_a),
        [
            ResultCode::RequestNotFound,
            ResultCode::Ok,
            ResultCode::Ok,
            ResultCode::Ok,
            ResultCode::Ok
        ]
    );
    assert_eq!(on_a.validator_updates, vec![(cand.key().to_vec(), 10)]);
    assert_eq!(on_a.app_hash, on_b.app_hash);
    assert_eq!(on_a.validator_updates, on_b.validator_updates);
}

#[test]
fn an_expired_request_refuses_a_late_approval_and_the_key_may_ask_again() {
    let (_dir, h, mut vals) = network(4, 3);
    let mut cand = Val::new(9);
    let b = h.block(vec![cand.join()]).unwrap();
    assert_eq!(b.height, 1);
    assert_eq!(request(&h, 1).expires_at, 4);
    h.block(vec![vals[0].approve(1)]).unwrap(); // height 2
    h.block(vec![]).unwrap(); // 3
    let b = h.block(vec![vals[1].approve(1)]).unwrap(); // 4: the last height a vote counts
    assert_eq!(codes(&b), [ResultCode::Ok]);
    let b = h.block(vec![vals[2].approve(1)]).unwrap(); // 5: too late
    assert_eq!(codes(&b), [ResultCode::RequestExpired]);
    assert!(
        b.results[0].log.contains("expired at height 4"),
        "{}",
        b.results[0].log
    );
    assert!(b.validator_updates.is_empty());
    assert_eq!(request(&h, 1).status_at(5), RequestStatus::Expired);
    assert_eq!(set_keys(&h).len(), 4);

    // A new request gets a new id and starts without the old votes.
    let b = h.block(vec![cand.join()]).unwrap();
    assert_eq!(codes(&b), [ResultCode::Ok]);
    let r = request(&h, 2);
    assert_eq!((r.status, r.votes.len()), (RequestStatus::Pending, 0));
}

#[test]
fn duplicates_and_impostors_are_refused_with_their_own_codes() {
    let (_dir, h, mut vals) = network(4, 100);
    let mut cand = Val::new(9);
    let mut outsider = Val::new(8);
    let mut sol = Wallet::new(KeyType::Ed25519, "solana_sign_message");
    let mut bad_contact = Val::new(7);
    bad_contact.node_id = "ABC".into();
    let target = Val::new(6);
    let b = h
        .block(vec![
            cand.join(),
            cand.join(),
            vals[0].join(),
            vals[0].approve(1),
            vals[0].approve(1),
            outsider.approve(1),
            vals[1].approve(77),
            vals[1].remove(&target),
            sol.tx(Payload::ValidatorLeave),
            bad_contact.join(),
            outsider.leave(),
        ])
        .unwrap();
    assert_eq!(
        codes(&b),
        [
            ResultCode::Ok,
            ResultCode::RequestPending,
            ResultCode::AlreadyValidator,
            ResultCode::Ok,
            ResultCode::AlreadyVoted,
            ResultCode::NotAValidator,
            ResultCode::RequestNotFound,
            ResultCode::ValidatorNotFound,
            ResultCode::InvalidValidatorRequest,
            ResultCode::InvalidValidatorRequest,
            ResultCode::NotAValidator,
        ]
    );
    // CheckTx refuses what the text alone fails.
    let c = h.check_tx(&sol.tx(Payload::ValidatorLeave));
    assert_eq!(c.code.value(), ResultCode::InvalidValidatorRequest.code());
    let mut worse = Val::new(5);
    worse.node_id = "0".repeat(40);
    let tx = worse.wallet.tx(Payload::ValidatorJoin {
        node_id: worse.node_id.clone(),
        address: "no-port".into(),
    });
    let c = h.check_tx(&tx);
    assert_eq!(
        c.code.value(),
        ResultCode::InvalidValidatorRequest.code(),
        "{}",
        c.log
    );

    // Decided requests cannot be approved again.
    h.block(vec![vals[1].approve(1), vals[2].approve(1)])
        .unwrap();
    assert_eq!(request(&h, 1).status, RequestStatus::Approved);
    let b = h.block(vec![vals[3].approve(1)]).unwrap();
    assert_eq!(codes(&b), [ResultCode::RequestNotFound]);
}

#[test]
fn a_leave_is_immediate_and_the_leavers_votes_stop_counting() {
    let (_dir, h, mut vals) = network(4, 100);
    let mut cand = Val::new(9);
    h.block(vec![cand.join()]).unwrap();
    h.block(vec![vals[0].approve(1), vals[1].approve(1)])
        .unwrap();
    // vals[0] leaves: it is gone in this block's updates, and its vote is dropped, so with 3 validators
    // (needed 2) only vals[1]'s vote counts: not enough yet.
    let b = h.block(vec![vals[0].leave()]).unwrap();
    assert_eq!(codes(&b), [ResultCode::Ok]);
    assert_eq!(b.validator_updates, vec![(vals[0].key().to_vec(), 0)]);
    let r = request(&h, 1);
    assert_eq!(r.status, RequestStatus::Pending);
    assert_eq!(
        r.votes.iter().cloned().collect::<Vec<_>>(),
        [vals[1].wallet.identity()]
    );
    let left = h.app.reads().validators().unwrap().left;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].inactive_from, b.height + 2);
    // A validator that left cannot vote.
    let b = h.block(vec![vals[0].approve(1)]).unwrap();
    assert_eq!(codes(&b), [ResultCode::NotAValidator]);
    let b = h.block(vec![vals[2].approve(1)]).unwrap();
    assert_eq!(b.validator_updates, vec![(cand.key().to_vec(), 10)]);
}

#[test]
fn the_threshold_is_recounted_against_the_set_when_it_shrinks() {
    let (_dir, h, mut vals) = network(4, 100);
    let mut cand = Val::new(9);
    h.block(vec![cand.join(), vals[0].approve(1), vals[1].approve(1)])
        .unwrap();
    assert_eq!(request(&h, 1).status, RequestStatus::Pending);
    // vals[3] did not vote; when it leaves, 2 votes of 3 validators reach ceil(2 × 3 / 3) = 2.
    let b = h.block(vec![vals[3].leave()]).unwrap();
    let mut expected = vec![(vals[3].key().to_vec(), 0), (cand.key().to_vec(), 10)];
    expected.sort();
    assert_eq!(b.validator_updates, expected);
    assert_eq!(request(&h, 1).status, RequestStatus::Approved);
}

#[test]
fn a_removal_vote_removes_at_the_threshold_and_drops_the_removed_validators_votes() {
    let (_dir, h, mut vals) = network(4, 100);
    let mut cand = Val::new(9);
    // vals[3] votes for a join, then is voted out before the join decides.
    h.block(vec![cand.join(), vals[3].approve(1)]).unwrap();
    let (first, rest) = vals.split_at_mut(3);
    let target = &rest[0];
    let b = h
        .block(vec![first[0].remove(target), first[1].remove(target)])
        .unwrap();
    assert_eq!(codes(&b), [ResultCode::Ok, ResultCode::Ok]);
    assert!(b.validator_updates.is_empty());
    let removal = request(&h, 2);
    assert_eq!(
        (removal.kind, removal.votes.len()),
        (RequestKind::Remove, 2)
    );
    // The third vote may come as validator_approve of the removal request.
    let b = h.block(vec![first[2].approve(2)]).unwrap();
    assert_eq!(b.validator_updates, vec![(target.key().to_vec(), 0)]);
    assert_eq!(request(&h, 2).status, RequestStatus::Approved);
    assert!(!set_keys(&h).contains(&target.wallet.identity()));
    // Its vote for the join is gone.
    assert!(request(&h, 1).votes.is_empty());
    let b = h.block(vec![vals[3].approve(1)]).unwrap();
    assert_eq!(codes(&b), [ResultCode::NotAValidator]);
}

#[test]
fn the_set_is_never_emptied_nor_left_to_two_thirds_or_less_of_the_kept_validators() {
    // One validator cannot leave.
    let (_dir, h, mut vals) = network(1, 100);
    let b = h.block(vec![vals[0].leave()]).unwrap();
    assert_eq!(codes(&b), [ResultCode::ValidatorSetUnsafe]);
    assert!(b.validator_updates.is_empty());
    assert_eq!(set_keys(&h).len(), 1);

    // Two validators approving a third: 2 kept of 3 is not more than two thirds; the request stays pending.
    let (_dir, h, mut vals) = network(2, 100);
    let mut cand = Val::new(9);
    let b = h
        .block(vec![cand.join(), vals[0].approve(1), vals[1].approve(1)])
        .unwrap();
    assert_eq!(codes(&b), [ResultCode::Ok; 3]);
    assert!(b.validator_updates.is_empty());
    assert_eq!(request(&h, 1).status, RequestStatus::Pending);

    // Three validators: a join is safe (3 of 4), but not together with a leave in the same block (2 of 3).
    let (_dir, h, mut vals) = network(3, 100);
    let mut cand = Val::new(9);
    let b = h
        .block(vec![
            cand.join(),
            vals[0].approve(1),
            vals[1].approve(1),
            vals[2].leave(),
        ])
        .unwrap();
    assert_eq!(codes(&b), [ResultCode::Ok; 4]);
    assert_eq!(b.validator_updates, vec![(vals[2].key().to_vec(), 0)]);
    assert_eq!(
        request(&h, 1).status,
        RequestStatus::Pending,
        "2 kept of 3 is unsafe"
    );
    // The next block starts from the 2-validator set: still unsafe, however often it is retried.
    let b = h.block(vec![vals[0].leave()]).unwrap();
    assert_eq!(codes(&b), [ResultCode::Ok]);
    assert_eq!(b.validator_updates, vec![(vals[0].key().to_vec(), 0)]);
    let b = h.block(vec![vals[1].leave()]).unwrap();
    assert_eq!(codes(&b), [ResultCode::ValidatorSetUnsafe]);
    assert_eq!(set_keys(&h), vec![vals[1].wallet.identity()]);
}

#[test]
fn requests_and_votes_survive_a_restart_with_the_same_app_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let mut vals: Vec<Val> = (0..4).map(Val::new).collect();
    let twin = start(&dir, &vals, 100, "twin");
    let mut h = start(&dir, &vals, 100, "a");
    let mut cand = Val::new(9);
    let blocks = [
        vec![cand.join()],
        vec![vals[0].approve(1), vals[1].approve(1)],
    ];
    for txs in blocks {
        let x = h.block(txs.clone()).unwrap();
        let y = twin.block(txs).unwrap();
        assert_eq!(x.app_hash, y.app_hash);
    }
    h = h.restart().unwrap();
    assert_eq!(request(&h, 1).votes.len(), 2);
    let last = vals[2].approve(1);
    let x = h.block(vec![last.clone()]).unwrap();
    let y = twin.block(vec![last]).unwrap();
    assert_eq!(x.validator_updates, vec![(cand.key().to_vec(), 10)]);
    assert_eq!(x.app_hash, y.app_hash);
    assert_eq!(sorted(set_keys(&h)), sorted(set_keys(&twin)));
}

#[test]
fn the_peer_filter_accepts_validators_and_listed_nodes_and_follows_the_set() {
    let dir = tempfile::tempdir().unwrap();
    let mut vals: Vec<Val> = (0..4).map(Val::new).collect();
    let keys: Vec<[u8; 32]> = vals.iter().map(Val::key).collect();
    let mut config = AppConfig::new(dir.path().join("p.sqlite"));
    let listed = format!("{:040x}", 0x5e27);
    config.allowed_peers.insert(listed.clone());
    let h = Harness::start_network(config, CHAIN, &keys, &app_state(&vals, 100)).unwrap();
    let allowed = |id: &str| {
        h.app
            .filter_peer(&format!("/p2p/filter/id/{id}"))
            .code
            .value()
            == 0
    };
    assert!(allowed(&vals[0].node_id), "genesis validator");
    assert!(allowed(&listed), "operator-listed node");
    let mut cand = Val::new(9);
    assert!(!allowed(&cand.node_id), "a stranger is refused");
    let refused = h
        .app
        .filter_peer(&format!("/p2p/filter/id/{}", cand.node_id));
    assert!(refused.log.contains("allowed_peers"), "{}", refused.log);
    assert_eq!(
        h.app
            .filter_peer("/p2p/filter/addr/127.0.0.1:1234")
            .code
            .value(),
        0
    );

    h.block(vec![cand.join()]).unwrap();
    assert!(
        !allowed(&cand.node_id),
        "a pending candidate is not a validator yet"
    );
    h.block(vec![
        vals[0].approve(1),
        vals[1].approve(1),
        vals[2].approve(1),
    ])
    .unwrap();
    assert!(allowed(&cand.node_id), "an approved candidate is");
    let b = h.block(vec![vals[3].leave()]).unwrap();
    assert_eq!(codes(&b), [ResultCode::Ok]);
    assert!(
        !allowed(&vals[3].node_id),
        "a validator that left is refused"
    );
}

#[test]
fn hostile_validator_payloads_fail_their_own_transaction_and_never_the_block() {
    let (_dir, h, mut vals) = network(4, 100);
    let mut eth = Wallet::eth();
    let mut huge = Val::new(9);
    let huge_join = huge.wallet.tx(Payload::ValidatorJoin {
        node_id: "a".repeat(40),
        address: format!("{}:1", "h".repeat(100_000)),
    });
    let short_key = vals[0]
        .wallet
        .tx(Payload::ValidatorRemove { key: vec![1; 31] });
    let no_such = vals[1].approve(u64::MAX);
    let eth_leave = eth.tx(Payload::ValidatorLeave);
    let eth_join = eth.tx(Payload::ValidatorJoin {
        node_id: "a".repeat(40),
        address: "127.0.0.1:1".into(),
    });
    let b = h
        .block(vec![
            huge_join.clone(),
            short_key,
            no_such,
            eth_leave,
            eth_join,
        ])
        .unwrap();
    assert_eq!(
        codes(&b),
        [
            ResultCode::InvalidValidatorRequest,
            ResultCode::InvalidValidatorRequest,
            ResultCode::RequestNotFound,
            ResultCode::InvalidValidatorRequest,
            ResultCode::InvalidValidatorRequest,
        ]
    );
    // The refusal names the cause without echoing 100 KB back.
    assert!(b.results[0].log.len() < 300, "{}", b.results[0].log.len());
    assert!(
        b.results[0].log.contains("host:port"),
        "{}",
        b.results[0].log
    );
    assert!(b.validator_updates.is_empty());
    assert_eq!(set_keys(&h).len(), 4);
    // A validator may vote for its own removal: that is one vote like any other.
    let (first, rest) = vals.split_at_mut(3);
    let b = h
        .block(vec![
            {
                let own = rest[0].key().to_vec();
                rest[0].wallet.tx(Payload::ValidatorRemove { key: own })
            },
            first[0].remove(&rest[0]),
            first[1].remove(&rest[0]),
        ])
        .unwrap();
    assert_eq!(codes(&b), [ResultCode::Ok; 3]);
    assert_eq!(b.validator_updates, vec![(rest[0].key().to_vec(), 0)]);
}

#[test]
fn the_peer_filter_refuses_queries_it_does_not_know_and_reads_ids_in_any_case() {
    let dir = tempfile::tempdir().unwrap();
    let vals: Vec<Val> = (0..2).map(Val::new).collect();
    let h = start(&dir, &vals, 100, "q");
    for junk in [
        "/p2p/filter/",
        "/p2p/filter/pubkey/abc",
        "/p2p/filter/id/",
        "/p2p/filter/id/../../etc",
    ] {
        let r = h.app.filter_peer(junk);
        assert_ne!(r.code.value(), 0, "{junk} accepted");
        assert!(!r.log.is_empty(), "{junk}");
    }
    let upper = vals[1].node_id.to_ascii_uppercase();
    assert_eq!(
        h.app
            .filter_peer(&format!("/p2p/filter/id/{upper}"))
            .code
            .value(),
        0
    );
}

#[test]
fn validator_state_enters_the_app_hash_even_without_validator_updates() {
    // Two nodes run a join that differs only in the contact it names: same changeset (none), same results, no
    // validator updates; only the stored request differs, and the app hashes must differ with it.
    let dir = tempfile::tempdir().unwrap();
    let vals: Vec<Val> = (0..4).map(Val::new).collect();
    let a = start(&dir, &vals, 100, "a");
    let b = start(&dir, &vals, 100, "b");
    let cand = Val::new(9);
    let join = |node_id: &str| {
        cand.wallet.tx_with_nonce(
            1,
            Payload::ValidatorJoin {
                node_id: node_id.into(),
                address: "127.0.0.1:26656".into(),
            },
        )
    };
    let on_a = a.block(vec![join(&"a".repeat(40))]).unwrap();
    let on_b = b.block(vec![join(&"b".repeat(40))]).unwrap();
    assert_eq!(codes(&on_a), [ResultCode::Ok]);
    assert_eq!(codes(&on_b), [ResultCode::Ok]);
    assert!(on_a.validator_updates.is_empty() && on_b.validator_updates.is_empty());
    assert_ne!(on_a.app_hash, on_b.app_hash);
    // A refused validator transaction writes no validator state: its block's app hash is the plain formula.
    let mut outsider = Val::new(8);
    let x = a.block(vec![outsider.leave()]).unwrap();
    assert_eq!(codes(&x), [ResultCode::NotAValidator]);
    // The hash of the empty changeset (docs/protocol.md, "Check values").
    let empty: [u8; 32] =
        hex::decode("6d9e0b98810397e3b9b44c78383007ec01cb38a95455d76cec4b635da4bd6082")
            .unwrap()
            .try_into()
            .unwrap();
    use dstorage_app::apphash;
    let plain = apphash::next(
        &on_a.app_hash,
        &empty,
        &apphash::validators_hash(&[]),
        &apphash::results_hash(&[(ResultCode::NotAValidator.code(), 0)]),
    );
    assert_eq!(x.app_hash, plain);
}
