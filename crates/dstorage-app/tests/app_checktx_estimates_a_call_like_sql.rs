//! CheckTx prices a `call` the way it prices an `sql` transaction (docs/protocol.md): the estimated cost of the
//! action's statements, refused with `cost_estimate_too_high` above the per-transaction limit (no nonce spent),
//! admitted with the estimate below it.

mod common;

use common::*;
use dstorage_app::testing::Harness;
use dstorage_app::AppConfig;
use dstorage_types::result::ResultCode;
use dstorage_types::tx::Payload;
use dstorage_types::value::Value;

const LIMIT: u64 = 20_000;

const FILE: &str = "CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL) STRICT;
CREATE ACTION touch_all($v INTEGER) AUTHENTICATED AS BEGIN UPDATE t SET v = $v; END;
CREATE ACTION touch_one($id INTEGER, $v INTEGER) AUTHENTICATED AS BEGIN UPDATE t SET v = $v WHERE id = $id; END;";

fn checked(h: &Harness, tx: &[u8]) -> (ResultCode, String) {
    let r = h.check_tx(tx);
    (
        ResultCode::from_code(r.code.value()).expect("a dstorage code"),
        r.log,
    )
}

#[test]
fn a_call_whose_statements_are_estimated_over_the_limit_is_refused_in_checktx_like_sql() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = AppConfig::new(dir.path().join("db.sqlite"));
    config.cost_limit_per_tx = LIMIT;
    let h = Harness::start_with(config, CHAIN).unwrap();
    let mut owner = Wallet::ed25519();
    let out = h.block(vec![owner.tx(deploy("app", FILE))]).unwrap();
    assert_eq!(
        code(&out.results[0]),
        ResultCode::Ok,
        "{}",
        out.results[0].log
    );
    // 2,000 rows, 100 per transaction, so that a full scan is priced far above the limit.
    for batch in 0..20 {
        let values = (0..100)
            .map(|i| format!("({}, 0)", batch * 100 + i))
            .collect::<Vec<_>>()
            .join(", ");
        let out = h
            .block(vec![
                owner.tx(sql("app", &format!("INSERT INTO t VALUES {values}")))
            ])
            .unwrap();
        assert_eq!(
            code(&out.results[0]),
            ResultCode::Ok,
            "{}",
            out.results[0].log
        );
    }
    let mut alice = Wallet::ed25519();
    let call = |action: &str, args: Vec<Value>| Payload::Call {
        schema: "app".into(),
        action: action.into(),
        args,
    };
    // The owner's own SQL doing the same is refused the same way.
    let (code_sql, log) = checked(
        &h,
        &owner.tx_with_nonce(owner.next_nonce, sql("app", "UPDATE t SET v = 1")),
    );
    assert_eq!(code_sql, ResultCode::CostEstimateTooHigh, "{log}");
    let (code_call, log) = checked(
        &h,
        &alice.tx_with_nonce(1, call("touch_all", vec![Value::Integer(1)])),
    );
    assert_eq!(code_call, ResultCode::CostEstimateTooHigh, "{log}");
    assert!(log.contains("app.touch_all"), "{log}");
    // Refused in CheckTx: the nonce is still free, and a cheap call with it is admitted and runs.
    let cheap = alice.tx(call(
        "touch_one",
        vec![Value::Integer(7), Value::Integer(5)],
    ));
    let (code_cheap, log) = checked(&h, &cheap);
    assert_eq!(code_cheap, ResultCode::Ok, "{log}");
    let out = h.block(vec![cheap]).unwrap();
    assert_eq!(
        code(&out.results[0]),
        ResultCode::Ok,
        "{}",
        out.results[0].log
    );
    let rows = h
        .app
        .reads()
        .query("app", "SELECT v FROM t WHERE id = 7", 1_000_000)
        .unwrap()
        .rows;
    assert_eq!(rows, vec![vec![Value::Integer(5)]]);
}
