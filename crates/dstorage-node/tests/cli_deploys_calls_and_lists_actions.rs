//! The CLI's action commands on a real node: `dstorage deploy` of the identity store, `dstorage actions SCHEMA`
//! (text and `--json`), `dstorage call SCHEMA ACTION --arg JSON` succeeding and failing with the action's own
//! message, and `dstorage read SCHEMA ACTION` of the caller's own view.

mod common;

use std::process::Command;

use common::{Net, DSTORAGE};
use dstorage_auth::SecretKey;
use dstorage_client::api::{ActionsResponse, QueryResponse, TxResult};
use dstorage_types::identity::KeyType;
use dstorage_types::result::ResultCode;
use dstorage_types::value::Value;

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_deploys_calls_and_lists_actions() {
    let mut net = Net::init_single();
    net.nodes[0].start().await;
    let api = net.nodes[0].config.api_addr.clone();
    let keys = tempfile::tempdir().expect("key dir");
    let key = |name: &str, t: KeyType| {
        let path = keys.path().join(format!("{name}.json"));
        SecretKey::generate(t).save(&path).expect("save key");
        path.to_str().expect("utf-8 path").to_owned()
    };
    let operator = key("operator", KeyType::Ed25519);
    let alice = key("alice", KeyType::Secp256k1);
    let mallory = key("mallory", KeyType::Ed25519);
    let cli = |args: &[&str], json: bool| {
        let mut c = Command::new(DSTORAGE);
        c.args(args).args(["--node", &api]);
        if json {
            c.arg("--json");
        }
        let out = c.output().expect("run dstorage");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let store = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/identity_store.sql"
    );
    let (status, out, err) = cli(
        &["deploy", store, "--schema", "ids", "--key", &operator],
        false,
    );
    assert_eq!(status, Some(0), "deploy: {out} {err}");

    let (status, out, err) = cli(&["actions", "ids"], false);
    assert_eq!(status, Some(0), "actions: {err}");
    assert!(
        out.lines()
            .any(|l| l == "CREATE ACTION add_wallet($address TEXT, $standard TEXT, $public_key BLOB NULL) AUTHENTICATED"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l == "CREATE VIEW ACTION count_humans() PUBLIC"),
        "{out}"
    );
    let (status, out, err) = cli(&["actions", "ids"], true);
    assert_eq!(status, Some(0), "actions --json: {err}");
    let listed: ActionsResponse = serde_json::from_str(&out).expect("actions JSON");
    let share = listed
        .actions
        .iter()
        .find(|a| a.name == "share_credential")
        .expect("share_credential listed");
    assert_eq!(
        (share.kind.as_str(), share.access.as_str()),
        ("write", "authenticated")
    );
    assert_eq!(share.params.len(), 4);

    let (status, out, err) = cli(
        &[
            "call",
            "ids",
            "create_human",
            "--arg",
            "\"alice\"",
            "--key",
            &alice,
        ],
        true,
    );
    assert_eq!(status, Some(0), "call: {out} {err}");
    let r: TxResult = serde_json::from_str(&out).expect("call JSON");
    assert_eq!(r.code, ResultCode::Ok, "{}", r.message);
    let (status, out, err) = cli(
        &[
            "call",
            "ids",
            "add_credential",
            "--arg",
            "\"kyc-1\"",
            "--arg",
            "\"did:issuer:acme\"",
            "--arg",
            "\"kyc\"",
            "--arg",
            "{\"blob\":\"00ff\"}",
            "--key",
            &alice,
        ],
        false,
    );
    assert_eq!(status, Some(0), "add_credential: {out} {err}");

    // Mallory's edit fails in its block with the action's message; the CLI exits 1 and says why.
    let (status, out, err) = cli(
        &[
            "call",
            "ids",
            "edit_credential",
            "--arg",
            "\"kyc-1\"",
            "--arg",
            "{\"blob\":\"00\"}",
            "--key",
            &mallory,
        ],
        true,
    );
    assert_eq!(status, Some(1), "mallory's edit: {out} {err}");
    let r: TxResult = serde_json::from_str(&out).expect("call JSON");
    assert_eq!(
        (r.code, r.message.as_str()),
        (ResultCode::ActionError, "no such credential of yours")
    );
    // A bad argument is refused before it is sent on: exit 1, the code named.
    let (status, _, err) = cli(
        &[
            "call",
            "ids",
            "create_human",
            "--arg",
            "7",
            "--key",
            &mallory,
        ],
        false,
    );
    assert_eq!(status, Some(1));
    assert!(err.contains("bad_arguments"), "{err}");
    assert!(
        err.contains("argument 1 ($id) of action create_human must be TEXT, got INTEGER"),
        "{err}"
    );

    // Alice reads her own credentials with a signed read.
    let (status, out, err) = cli(
        &["read", "ids", "list_my_credentials", "--key", &alice],
        true,
    );
    assert_eq!(status, Some(0), "read: {out} {err}");
    let rows: QueryResponse = serde_json::from_str(&out).expect("read JSON");
    assert_eq!(rows.rows.len(), 1);
    assert_eq!(rows.rows[0][0], Value::Text("kyc-1".into()));
}
