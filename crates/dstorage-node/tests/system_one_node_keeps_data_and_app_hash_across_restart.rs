//! One real node (`dstorage init` + `dstorage start`, supervising CometBFT): deploy a schema, write, read the
//! rows back, fetch the block's changeset; stop the node with SIGTERM and start it again: the rows, the
//! transaction record, the changeset and the app hash are intact, and the chain continues from where it was.

mod common;

use std::time::Duration;

use common::{Net, CHAIN_ID};
use dstorage_client::api::ChangeRecord;
use dstorage_types::result::ResultCode;
use dstorage_types::value::Value;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_keeps_data_and_app_hash_across_restart() {
    let mut net = Net::init_single();
    net.nodes[0].start().await;
    let node = &net.nodes[0];
    let client = node.client();
    let signer = common::new_signer();

    let status = node.status().await.expect("status");
    assert_eq!(status.chain_id, CHAIN_ID);
    assert_eq!(status.validators.len(), 1);

    let deployed = client
        .deploy(
            &signer,
            "shop",
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER NOT NULL) STRICT",
        )
        .await
        .expect("deploy");
    assert_eq!(deployed.code, ResultCode::Ok, "{}", deployed.message);

    let written = client
        .exec(
            &signer,
            "shop",
            "INSERT INTO items VALUES (1, 'apple', 3), (2, 'pear', 5); UPDATE items SET qty = qty + 1 WHERE id = 2",
        )
        .await
        .expect("exec");
    assert_eq!(written.code, ResultCode::Ok, "{}", written.message);
    assert_eq!(written.nonce, Some(2));
    assert!(written.height > deployed.height);

    let expected_rows = vec![
        vec![
            Value::Integer(1),
            Value::Text("apple".into()),
            Value::Integer(3),
        ],
        vec![
            Value::Integer(2),
            Value::Text("pear".into()),
            Value::Integer(6),
        ],
    ];
    let read = client
        .query_signed(
            &signer,
            "shop",
            "SELECT id, name, qty FROM items ORDER BY id",
            Vec::new(),
        )
        .await
        .expect("query");
    assert_eq!(read.columns, ["id", "name", "qty"]);
    assert_eq!(read.rows, expected_rows);

    // The block holds only our write: two inserts, the second already carrying the updated quantity.
    let changeset = client.changeset(written.height).await.expect("changeset");
    let row = |id: i64, name: &str, qty: i64| ChangeRecord {
        op: "insert".into(),
        table: "shop.items".into(),
        key: vec![Value::Integer(id)],
        columns: vec![
            (0, Value::Integer(id)),
            (1, Value::Text(name.into())),
            (2, Value::Integer(qty)),
        ],
    };
    assert_eq!(
        changeset.records,
        vec![row(1, "apple", 3), row(2, "pear", 6)]
    );
    let tx_before = client.tx(&written.hash).await.expect("tx record");

    // Stop at a known height: everything up to `before.height` was committed by the app.
    let before = node.status().await.expect("status before stop");
    let stopped = net.nodes[0].stop().await;
    assert!(
        stopped.success(),
        "SIGTERM should stop the node cleanly, got {stopped}"
    );

    net.nodes[0].start().await;
    let node = &net.nodes[0];
    let after = node.status().await.expect("status after restart");
    assert_eq!(after.chain_id, CHAIN_ID);
    assert!(
        after.height >= before.height,
        "restarted at height {} below the {} committed before the stop",
        after.height,
        before.height
    );
    let record = node
        .height_record(before.height)
        .await
        .expect("record of the last height before the stop");
    assert_eq!(
        record.app_hash, before.app_hash,
        "app hash at height {} changed across the restart",
        before.height
    );

    let read = client
        .query_signed(
            &signer,
            "shop",
            "SELECT id, name, qty FROM items ORDER BY id",
            Vec::new(),
        )
        .await
        .expect("query after restart");
    assert_eq!(read.rows, expected_rows);
    assert_eq!(
        client.tx(&written.hash).await.expect("tx after restart"),
        tx_before
    );
    assert_eq!(
        client
            .changeset(written.height)
            .await
            .expect("changeset after restart"),
        changeset
    );

    // The chain continues: new blocks on top, whose headers carry the app hash we had, and writes still work.
    node.wait_height(before.height + 2, WAIT).await;
    let next = node
        .rpc()
        .block(Some(before.height + 1))
        .await
        .expect("block after the stop height");
    assert_eq!(next.app_hash, before.app_hash);
    let again = client
        .exec(&signer, "shop", "DELETE FROM items WHERE id = 1")
        .await
        .expect("write after restart");
    assert_eq!(again.code, ResultCode::Ok, "{}", again.message);
    assert_eq!(again.nonce, Some(3));
    assert!(again.height > before.height);
    let read = client
        .query_signed(
            &signer,
            "shop",
            "SELECT id, name, qty FROM items ORDER BY id",
            Vec::new(),
        )
        .await
        .expect("query after the new write");
    assert_eq!(read.rows, expected_rows[1..]);

    // The CLI binds `--param` values (JSON) to the placeholders of one statement.
    let keys = tempfile::tempdir().expect("key dir");
    let key = keys.path().join("cli-key.json");
    let sql_file = keys.path().join("notes.sql");
    std::fs::write(
        &sql_file,
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, raw BLOB) STRICT",
    )
    .expect("sql file");
    let made = std::process::Command::new(common::DSTORAGE)
        .args([
            "key",
            "new",
            "--type",
            "ed25519",
            "--out",
            key.to_str().unwrap(),
        ])
        .output()
        .expect("dstorage key new");
    assert!(made.status.success(), "{made:?}");
    let api = node.config.api_addr.clone();
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(common::DSTORAGE)
            .args(args)
            .args(["--key", key.to_str().unwrap(), "--node", &api, "--json"])
            .output()
            .expect("run dstorage");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (status, _, err) = cli(&["deploy", sql_file.to_str().unwrap()]);
    assert_eq!(status, Some(0), "deploy: {err}");
    let (status, out, err) = cli(&[
        "exec",
        "INSERT INTO notes VALUES (?, ?, ?)",
        "--param",
        "7",
        "--param",
        r#""it's; DROP TABLE notes""#,
        "--param",
        r#"{"blob":"00ff"}"#,
    ]);
    assert_eq!(status, Some(0), "exec with params: {err}");
    assert!(out.contains("\"code\""), "{out}");
    // The schema is the CLI key's, so only a read signed with that key sees it.
    let cli_signer = dstorage_client::Signer::new(
        dstorage_auth::SecretKey::load(&key).expect("cli key"),
        "ed25519",
    )
    .expect("cli signer");
    let read = client
        .query_signed(
            &cli_signer,
            "notes",
            "SELECT id, body, raw FROM notes",
            Vec::new(),
        )
        .await
        .expect("query notes");
    assert_eq!(
        read.rows,
        vec![vec![
            Value::Integer(7),
            Value::Text("it's; DROP TABLE notes".into()),
            Value::Blob(vec![0, 255]),
        ]]
    );
    let (status, _, err) = cli(&[
        "exec",
        "INSERT INTO notes VALUES (?, 'x', NULL)",
        "--param",
        "{oops",
    ]);
    assert_ne!(status, Some(0));
    assert!(err.contains("--param #1"), "{err}");
}
