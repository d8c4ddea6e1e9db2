//! Schema actions (docs/schemas.md) on the real app: access rules decided the same in CheckTx and in the block,
//! arguments checked before anything runs, `@...` values bound as data, `error('...')` aborting the whole action,
//! views that write refused at deploy, and the identity store's own SQL keeping one human out of another's rows.

mod common;

use common::*;
use dstorage_app::testing::Harness;
use dstorage_types::action::Access;
use dstorage_types::caller::Caller;
use dstorage_types::result::ResultCode;
use dstorage_types::tx::Payload;
use dstorage_types::value::Value;

const NOTES: &str =
    "CREATE TABLE notes (id TEXT PRIMARY KEY, author TEXT NOT NULL, body TEXT) STRICT;
CREATE TABLE seen (id INTEGER PRIMARY KEY, caller TEXT, standard TEXT, key BLOB, height INTEGER,
  time INTEGER, tx TEXT) STRICT;
CREATE ACTION add_note($id TEXT, $body TEXT NULL) AUTHENTICATED AS BEGIN
  INSERT INTO notes VALUES ($id, @caller, $body);
END;
CREATE ACTION wipe() OWNER AS BEGIN DELETE FROM notes; END;
CREATE ACTION record($n INTEGER) PUBLIC AS BEGIN
  INSERT INTO seen VALUES ($n, @caller, @caller_standard, @caller_key, @height, @block_time, @tx);
END;
CREATE ACTION add_two($a TEXT, $b TEXT) AUTHENTICATED AS BEGIN
  INSERT INTO notes VALUES ($a, @caller, 'first');
  SELECT CASE WHEN $b = '' THEN error('second id is empty') END;
  INSERT INTO notes VALUES ($b, @caller, 'second');
END;
CREATE ACTION edit_note($id TEXT, $body TEXT) AUTHENTICATED AS BEGIN
  SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM notes WHERE id = $id AND author = @caller)
    THEN error('not your note') END;
  UPDATE notes SET body = $body WHERE id = $id AND author = @caller;
END;
CREATE VIEW ACTION get_note($id TEXT) PUBLIC AS BEGIN
  SELECT id, author, body FROM notes WHERE id = $id;
END;
CREATE VIEW ACTION my_notes() AUTHENTICATED AS BEGIN
  SELECT id, body FROM notes WHERE author = @caller;
END;
CREATE VIEW ACTION owner_view() OWNER AS BEGIN SELECT count(*) FROM notes; END;";

fn call(schema: &str, action: &str, args: Vec<Value>) -> Payload {
    Payload::Call {
        schema: schema.into(),
        action: action.into(),
        args,
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn start(dir: &tempfile::TempDir) -> Harness {
    Harness::start(&dir.path().join("db.sqlite"), CHAIN).unwrap()
}

fn notes(h: &Harness) -> Vec<Vec<Value>> {
    h.app
        .reads()
        .query("app", "SELECT id, author, body FROM notes", 1_000_000)
        .unwrap()
        .rows
}

fn caller_of(w: &Wallet) -> Caller {
    Caller {
        identity: w.identity(),
        standard: w.signer.standard().to_string(),
        key: None,
    }
}

fn deployed(h: &Harness, owner: &mut Wallet) {
    let out = h.block(vec![owner.tx(deploy("app", NOTES))]).unwrap();
    assert_eq!(
        code(&out.results[0]),
        ResultCode::Ok,
        "{}",
        out.results[0].log
    );
}

#[test]
fn an_authenticated_action_lets_any_signer_write_rows_that_name_them() {
    let dir = tempfile::tempdir().unwrap();
    let h = start(&dir);
    let mut owner = Wallet::ed25519();
    let mut alice = Wallet::eth();
    deployed(&h, &mut owner);
    let out = h
        .block(vec![alice.tx(call(
            "app",
            "add_note",
            vec![text("n1"), Value::Null],
        ))])
        .unwrap();
    assert_eq!(
        code(&out.results[0]),
        ResultCode::Ok,
        "{}",
        out.results[0].log
    );
    assert_eq!(
        notes(&h),
        vec![vec![text("n1"), text(&alice.identity()), Value::Null]]
    );
    // Not through ad-hoc SQL: that stays the owner's.
    let refused =
        h.check_tx(&alice.tx_with_nonce(alice.next_nonce, sql("app", "DELETE FROM notes")));
    assert_eq!(refused.code.value(), ResultCode::Unauthorized.code());
}

#[test]
fn an_owner_action_is_forbidden_to_others_in_checktx_and_in_the_block() {
    let dir = tempfile::tempdir().unwrap();
    let h = start(&dir);
    let mut owner = Wallet::ed25519();
    let mut mallory = Wallet::eth();
    deployed(&h, &mut owner);
    h.block(vec![owner.tx(call(
        "app",
        "add_note",
        vec![text("n1"), text("x")],
    ))])
    .unwrap();
    let wipe = mallory.tx(call("app", "wipe", Vec::new()));
    let checked = h.check_tx(&wipe);
    assert_eq!(
        checked.code.value(),
        ResultCode::Forbidden.code(),
        "{}",
        checked.log
    );
    assert!(
        checked.log.contains("for the schema's owner only"),
        "{}",
        checked.log
    );
    // A byzantine proposer includes it anyway: the block re-checks the rule.
    let height = h.app.committed().height + 1;
    let out = h.finalize_and_commit(height, vec![wipe.into()]).unwrap();
    assert_eq!(code(&out.results[0]), ResultCode::Forbidden);
    assert_eq!(notes(&h).len(), 1);
    let out = h
        .block(vec![owner.tx(call("app", "wipe", Vec::new()))])
        .unwrap();
    assert_eq!(
        code(&out.results[0]),
        ResultCode::Ok,
        "{}",
        out.results[0].log
    );
    assert!(notes(&h).is_empty());
}

#[test]
fn wrong_argument_counts_and_types_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let h = start(&dir);
    let mut owner = Wallet::ed25519();
    let mut alice = Wallet::eth();
    deployed(&h, &mut owner);
    for (args, needle) in [
        (vec![text("n1")], "takes 2 arguments ($id, $body), got 1"),
        (vec![text("n1"), text("b"), text("c")], "takes 2 arguments"),
        (
            vec![Value::Integer(1), text("b")],
            "argument 1 ($id) of action add_note must be TEXT, got INTEGER",
        ),
        (
            vec![Value::Null, text("b")],
            "argument 1 ($id) of action add_note must be TEXT, got NULL",
        ),
        (
            vec![text("n1"), Value::Blob(vec![1])],
            "argument 2 ($body) of action add_note must be TEXT or NULL, got BLOB",
        ),
    ] {
        let tx = alice.tx_with_nonce(1, call("app", "add_note", args.clone()));
        let r = h.check_tx(&tx);
        assert_eq!(
            r.code.value(),
            ResultCode::BadArguments.code(),
            "{args:?}: {}",
            r.log
        );
        assert!(r.log.contains(needle), "{args:?}: {}", r.log);
    }
    let r = h.check_tx(&alice.tx_with_nonce(1, call("app", "nope", Vec::new())));
    assert_eq!(
        r.code.value(),
        ResultCode::ActionNotFound.code(),
        "{}",
        r.log
    );
    let r = h.check_tx(&alice.tx_with_nonce(1, call("other", "add_note", Vec::new())));
    assert_eq!(
        r.code.value(),
        ResultCode::SchemaNotFound.code(),
        "{}",
        r.log
    );
    // Forced into a block, bad arguments fail there too and leave nothing.
    let out = h
        .finalize_and_commit(
            h.app.committed().height + 1,
            vec![alice
                .tx(call("app", "add_note", vec![Value::Integer(1)]))
                .into()],
        )
        .unwrap();
    assert_eq!(code(&out.results[0]), ResultCode::BadArguments);
    assert!(notes(&h).is_empty());
}

#[test]
fn context_values_are_the_signers_and_the_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let h = start(&dir);
    let mut owner = Wallet::ed25519();
    let mut alice = Wallet::ed25519();
    let bob_key = dstorage_auth::SecretKey::generate(dstorage_types::identity::KeyType::Secp256k1);
    let mut bob = Wallet {
        signer: dstorage_client::Signer::new(bob_key.clone(), "eth_personal_sign").unwrap(),
        next_nonce: 1,
        chain: CHAIN.to_string(),
    };
    deployed(&h, &mut owner);
    let a = alice.tx(call("app", "record", vec![Value::Integer(1)]));
    let b = bob.tx(call("app", "record", vec![Value::Integer(2)]));
    let out = h.block(vec![a.clone(), b.clone()]).unwrap();
    for r in &out.results {
        assert_eq!(code(r), ResultCode::Ok, "{}", r.log);
    }
    let rows = h
        .app
        .reads()
        .query(
            "app",
            "SELECT id, caller, standard, key, height, time, tx FROM seen",
            1_000_000,
        )
        .unwrap()
        .rows;
    let height = Value::Integer(out.height as i64);
    // The block header's time the harness gives this height (CometBFT's in a real network).
    let time = Value::Integer(dstorage_app::testing::block_time(out.height));
    let hash = |b: &[u8]| text(&dstorage_types::tx::tx_hash(b).to_string());
    let alice_key = dstorage_types::tx::Transaction::decode(&a)
        .unwrap()
        .body
        .sender;
    assert_eq!(
        rows,
        vec![
            vec![
                Value::Integer(1),
                text(&alice.identity()),
                text("ed25519"),
                Value::Blob(alice_key),
                height.clone(),
                time.clone(),
                hash(&a),
            ],
            vec![
                Value::Integer(2),
                text(&bob.identity()),
                text("eth_personal_sign"),
                // Recovered from the signature: the 33-byte compressed key whose address bob's is.
                Value::Blob(bob_key.public_key().to_bytes()),
                height,
                time,
                hash(&b),
            ],
        ]
    );
}

#[test]
fn error_aborts_the_whole_action_with_its_message_as_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let h = start(&dir);
    let mut owner = Wallet::ed25519();
    let mut alice = Wallet::eth();
    deployed(&h, &mut owner);
    let out = h
        .block(vec![
            alice.tx(call("app", "add_two", vec![text("a"), text("")])),
            alice.tx(call("app", "add_two", vec![text("a"), text("b")])),
        ])
        .unwrap();
    assert_eq!(code(&out.results[0]), ResultCode::ActionError);
    assert_eq!(out.results[0].log, "second id is empty");
    // The first insert of the failed call left nothing: the same id goes in on the next call.
    assert_eq!(
        code(&out.results[1]),
        ResultCode::Ok,
        "{}",
        out.results[1].log
    );
    assert_eq!(notes(&h).len(), 2);
}

#[test]
fn another_identity_cannot_edit_someones_rows_through_an_action() {
    let dir = tempfile::tempdir().unwrap();
    let h = start(&dir);
    let mut owner = Wallet::ed25519();
    let mut alice = Wallet::eth();
    let mut mallory = Wallet::ed25519();
    deployed(&h, &mut owner);
    h.block(vec![alice.tx(call(
        "app",
        "add_note",
        vec![text("n1"), text("mine")],
    ))])
    .unwrap();
    let out = h
        .block(vec![mallory.tx(call(
            "app",
            "edit_note",
            vec![text("n1"), text("stolen")],
        ))])
        .unwrap();
    assert_eq!(code(&out.results[0]), ResultCode::ActionError);
    assert_eq!(out.results[0].log, "not your note");
    assert_eq!(notes(&h)[0][2], text("mine"));
}

#[test]
fn sql_smuggled_in_an_argument_stays_data() {
    let dir = tempfile::tempdir().unwrap();
    let h = start(&dir);
    let mut owner = Wallet::ed25519();
    let mut alice = Wallet::eth();
    deployed(&h, &mut owner);
    let evil = "x', 'y'); DELETE FROM notes; --";
    let out = h
        .block(vec![
            alice.tx(call("app", "add_note", vec![text("n1"), text("keep")])),
            alice.tx(call(
                "app",
                "add_note",
                vec![text(evil), text("$body @caller")],
            )),
        ])
        .unwrap();
    for r in &out.results {
        assert_eq!(code(r), ResultCode::Ok, "{}", r.log);
    }
    let rows = notes(&h);
    assert_eq!(rows.len(), 2);
    assert!(rows.contains(&vec![
        text(evil),
        text(&alice.identity()),
        text("$body @caller")
    ]));
}

#[test]
fn a_view_that_writes_or_an_unknown_value_is_refused_at_deploy_by_checktx_and_the_block() {
    let dir = tempfile::tempdir().unwrap();
    let h = start(&dir);
    let mut owner = Wallet::ed25519();
    for (file, needle) in [
        (
            "CREATE TABLE t (a INTEGER PRIMARY KEY) STRICT;
             CREATE VIEW ACTION v() PUBLIC AS BEGIN SELECT 1; INSERT INTO t VALUES (1); END;",
            "INSERT in view action v",
        ),
        (
            "CREATE TABLE t (a INTEGER PRIMARY KEY) STRICT;
             CREATE ACTION w() PUBLIC AS BEGIN INSERT INTO t VALUES (@now); END;",
            "@now in action w",
        ),
        (
            "CREATE TABLE t (a INTEGER PRIMARY KEY) STRICT;
             CREATE ACTION w() PUBLIC AS BEGIN INSERT INTO t VALUES (random()); END;",
            "random() in action w",
        ),
    ] {
        let tx = owner.tx_with_nonce(owner.next_nonce, deploy("app", file));
        let r = h.check_tx(&tx);
        assert_eq!(r.code.value(), ResultCode::SqlRefused.code(), "{}", r.log);
        assert!(r.log.contains(needle), "{}", r.log);
        // A proposer that includes it anyway gets the same refusal from the block, and no schema.
        let out = h
            .finalize_and_commit(h.app.committed().height + 1, vec![tx.into()])
            .unwrap();
        assert_eq!(code(&out.results[0]), ResultCode::SqlRefused);
        owner.next_nonce += 1;
        assert!(h.app.reads().actions("app").unwrap().is_none());
    }
}

#[test]
fn views_run_unsigned_only_when_public_and_never_write() {
    let dir = tempfile::tempdir().unwrap();
    let h = start(&dir);
    let mut owner = Wallet::ed25519();
    let mut alice = Wallet::eth();
    deployed(&h, &mut owner);
    h.block(vec![alice.tx(call(
        "app",
        "add_note",
        vec![text("n1"), text("hi")],
    ))])
    .unwrap();
    let reads = h.app.reads();
    let (rows, height) = reads
        .call_view("app", "get_note", &[text("n1")], None, 1_000_000)
        .unwrap()
        .unwrap();
    assert_eq!(
        rows.rows,
        vec![vec![text("n1"), text(&alice.identity()), text("hi")]]
    );
    assert_eq!(height, h.app.committed().height);
    let refused = reads
        .call_view("app", "my_notes", &[], None, 1_000_000)
        .unwrap()
        .unwrap_err();
    assert_eq!(refused.code, ResultCode::Forbidden);
    let (mine, _) = reads
        .call_view("app", "my_notes", &[], Some(caller_of(&alice)), 1_000_000)
        .unwrap()
        .unwrap();
    assert_eq!(mine.rows, vec![vec![text("n1"), text("hi")]]);
    let refused = reads
        .call_view("app", "owner_view", &[], Some(caller_of(&alice)), 1_000_000)
        .unwrap()
        .unwrap_err();
    assert_eq!(refused.code, ResultCode::Forbidden);
    let refused = reads
        .call_view("app", "wipe", &[], Some(caller_of(&owner)), 1_000_000)
        .unwrap()
        .unwrap_err();
    assert_eq!(refused.code, ResultCode::NotAView);
    let refused = reads
        .call_view("app", "get_note", &[Value::Integer(1)], None, 1_000_000)
        .unwrap()
        .unwrap_err();
    assert_eq!(refused.code, ResultCode::BadArguments);
    let listed = reads.actions("app").unwrap().unwrap();
    assert_eq!(listed.actions["get_note"].access, Access::Public);
    assert!(listed.actions["get_note"].view);
    assert_eq!(listed.actions.len(), 8);
}

#[test]
fn two_nodes_give_the_same_codes_and_app_hash_for_the_same_calls() {
    let mut owner = Wallet::ed25519();
    let mut alice = Wallet::eth();
    let mut mallory = Wallet::ed25519();
    let blocks = vec![
        vec![owner.tx(deploy("app", NOTES))],
        vec![
            alice.tx(call("app", "add_note", vec![text("n1"), text("a")])),
            mallory.tx(call("app", "wipe", Vec::new())),
            mallory.tx(call("app", "edit_note", vec![text("n1"), text("m")])),
            alice.tx(call("app", "add_two", vec![text("x"), text("")])),
            alice.tx(call("app", "record", vec![Value::Integer(9)])),
            mallory.tx(call(
                "app",
                "add_note",
                vec![Value::Integer(3), Value::Null],
            )),
        ],
    ];
    let mut seen = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let h = start(&dir);
        let mut codes = Vec::new();
        let mut hash = [0u8; 32];
        for txs in &blocks {
            // Straight to FinalizeBlock: refusals that CheckTx would make are the block's to make too.
            let out = h
                .finalize_and_commit(
                    h.app.committed().height + 1,
                    txs.iter().cloned().map(Into::into).collect(),
                )
                .unwrap();
            codes.extend(out.results.iter().map(code));
            hash = out.app_hash;
        }
        seen.push((codes, hash));
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(
        seen[0].0,
        vec![
            ResultCode::Ok,
            ResultCode::Ok,
            ResultCode::Forbidden,
            ResultCode::ActionError,
            ResultCode::ActionError,
            ResultCode::Ok,
            ResultCode::BadArguments,
        ]
    );
}

#[test]
fn an_action_naming_a_missing_column_fails_its_deploy_and_leaves_no_schema() {
    let dir = tempfile::tempdir().unwrap();
    let h = start(&dir);
    let mut owner = Wallet::ed25519();
    let file = "CREATE TABLE t (id INTEGER PRIMARY KEY) STRICT;
        CREATE ACTION put($id INTEGER) PUBLIC AS BEGIN INSERT INTO t (id, nope) VALUES ($id, 1); END;";
    let out = h.block(vec![owner.tx(deploy("app", file))]).unwrap();
    assert_eq!(code(&out.results[0]), ResultCode::SqlError);
    assert!(
        out.results[0]
            .log
            .contains("action put: table t has no column named nope"),
        "{}",
        out.results[0].log
    );
    assert!(h.app.reads().actions("app").unwrap().is_none());
    assert!(h.app.reads().schemas().unwrap().is_empty());
    // The same name deploys once the action is right.
    let fixed = file.replace("(id, nope) VALUES ($id, 1)", "(id) VALUES ($id)");
    let out = h.block(vec![owner.tx(deploy("app", &fixed))]).unwrap();
    assert_eq!(
        code(&out.results[0]),
        ResultCode::Ok,
        "{}",
        out.results[0].log
    );
}

#[test]
fn public_read_in_a_schema_file_makes_it_publicly_readable_and_only_then() {
    let dir = tempfile::tempdir().unwrap();
    let h = start(&dir);
    let mut owner = Wallet::ed25519();
    let table = "CREATE TABLE t (id INTEGER PRIMARY KEY) STRICT;";
    let out = h
        .block(vec![
            owner.tx(deploy("open", &format!("{table} PUBLIC READ;"))),
            owner.tx(deploy("closed", table)),
        ])
        .unwrap();
    for r in &out.results {
        assert_eq!(code(r), ResultCode::Ok, "{}", r.log);
    }
    let reads = h.app.reads();
    assert!(reads.public_read("open").unwrap());
    assert!(reads.actions("open").unwrap().unwrap().public_read);
    assert!(!reads.public_read("closed").unwrap());
    // Dropped, the flag goes with the schema.
    h.block(vec![owner.tx(Payload::DropSchema {
        schema: "open".into(),
    })])
    .unwrap();
    assert!(!reads.public_read("open").unwrap());
    assert!(reads.actions("open").unwrap().is_none());
}
