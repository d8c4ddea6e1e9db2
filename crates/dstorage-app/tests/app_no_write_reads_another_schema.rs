//! A private schema cannot leak through another schema's write, view or action: whatever a transaction runs is
//! public (its rows land in its record, its copies in tables others read), so a write, DDL or an action's
//! statement may read only its own schema. Each attack is refused at CheckTx and, put in a block by a proposer
//! that skipped CheckTx, fails there with the same code; the victim's rows appear nowhere.
//!
//! Regression: an owner could run `INSERT INTO mine SELECT * FROM victim.secrets` and then read the copy, or
//! deploy a view or a PUBLIC view action over `victim.secrets` and read through it (the read check looked only at
//! the schemas a read names, not at what its own views and actions read).

mod common;

use common::*;
use dstorage_app::testing::Harness;
use dstorage_types::result::ResultCode;
use dstorage_types::value::Value;

const SECRETS: &str = "CREATE TABLE secrets (id INTEGER PRIMARY KEY, body TEXT NOT NULL) STRICT; \
                       INSERT INTO secrets VALUES (1, 'victim only')";

fn setup() -> (tempfile::TempDir, Harness, Wallet) {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(&dir.path().join("db.sqlite"), CHAIN).unwrap();
    let mut victim = Wallet::eth();
    let mut thief = Wallet::ed25519();
    let out = h
        .block(vec![
            victim.tx(deploy("victim", SECRETS)),
            thief.tx(deploy(
                "mine",
                "CREATE TABLE loot (id INTEGER PRIMARY KEY, body TEXT) STRICT",
            )),
        ])
        .unwrap();
    for r in &out.results {
        assert_eq!(code(r), ResultCode::Ok, "{}", r.log);
    }
    (dir, h, thief)
}

#[test]
fn no_write_view_or_action_of_one_schema_reads_another() {
    let (_d, h, mut thief) = setup();
    let attacks = [
        sql("mine", "INSERT INTO loot SELECT id, body FROM victim.secrets"),
        sql("mine", "SELECT body FROM victim.secrets"),
        sql(
            "mine",
            "UPDATE loot SET body = (SELECT body FROM victim.secrets WHERE id = 1)",
        ),
        sql(
            "mine",
            "CREATE VIEW peek AS SELECT id, body FROM victim.secrets",
        ),
        deploy(
            "mine2",
            "CREATE TABLE t (id INTEGER PRIMARY KEY) STRICT;\n\
             CREATE VIEW ACTION steal() PUBLIC AS BEGIN SELECT body FROM victim.secrets; END;",
        ),
        deploy(
            "mine3",
            "CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT) STRICT;\n\
             CREATE ACTION copy() PUBLIC AS BEGIN INSERT INTO t SELECT id, body FROM victim.secrets; END;",
        ),
    ];
    for (i, payload) in attacks.into_iter().enumerate() {
        let nonce = thief.next_nonce;
        let tx = thief.tx_with_nonce(nonce, payload);
        let r = h.check_tx(&tx);
        let got = ResultCode::from_code(r.code.value()).unwrap();
        assert_eq!(got, ResultCode::SqlRefused, "attack {i}: {}", r.log);
        assert!(r.log.contains("victim.secrets"), "attack {i}: {}", r.log);
        // A proposer that skipped CheckTx gets the same answer in the block.
        let out = h.block(vec![tx]).unwrap();
        assert_eq!(code(&out.results[0]), ResultCode::SqlRefused, "attack {i}");
        thief.next_nonce = nonce + 1;
    }
    let reads = h.app.reads();
    let loot = reads
        .query("mine", "SELECT id FROM loot", 1_000_000)
        .unwrap();
    assert!(loot.rows.is_empty(), "{:?}", loot.rows);
    assert_eq!(
        reads.schemas().unwrap().len(),
        2,
        "no attacking schema was deployed"
    );
    // The victim's own schema still reads as before, and a read may still name another schema (the API checks
    // its owner or PUBLIC READ flag before it runs).
    let own = reads
        .query(
            "mine",
            "SELECT body FROM victim.secrets WHERE id = 1",
            1_000_000,
        )
        .unwrap();
    assert_eq!(own.rows, vec![vec![Value::Text("victim only".into())]]);
}
