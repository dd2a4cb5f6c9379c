//! Tamper evidence: the trail is append-only, and `keyward audit verify` names the first
//! broken record after an edit, a deleted middle row, a deleted tail, swapped rows, or a
//! forged checkpoint.

use keyward_e2e::{Db, Server, b64, on_both_databases};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

/// A stopped server, on a fresh database of `db`'s kind, whose trail holds a few chained
/// records and a final checkpoint.
async fn trail(db: Db) -> (Server, Vec<i64>) {
    let db = match db {
        Db::Sqlite => Db::Sqlite,
        Db::Postgres(_) => Db::postgres().await.expect("postgres"),
    };
    let mut s = Server::start(db).await;
    let key = s.create_key("audit").await;
    for i in 0..10 {
        let r = s.post(&format!("/v1/keys/{key}/encrypt"), json!({"plaintext": b64(format!("m{i}").as_bytes())})).await;
        assert_eq!(r.status, 200);
    }
    assert_eq!(s.call("GET", "/v1/keys", "", None).await.status, 401);
    assert_eq!(s.stop(), Some(0));
    let rows =
        s.audit_store().await.query(&keyward_store::AuditQuery { limit: 1000, ..Default::default() }).await.unwrap();
    // Each writer lane keeps its own chain: tamper with the longest one, in sequence order.
    let mut chains: std::collections::BTreeMap<String, Vec<(i64, i64)>> = std::collections::BTreeMap::new();
    for r in &rows {
        if let (Some(chain), Some(seq)) = (&r.chain_id, r.sequence) {
            chains.entry(chain.clone()).or_default().push((seq, r.id));
        }
    }
    let mut longest = chains.into_values().max_by_key(Vec::len).unwrap();
    longest.sort_unstable();
    (s, longest.into_iter().map(|(_, id)| id).collect())
}

fn verify(s: &Server) -> (bool, Value) {
    let out = s.audit_verify();
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.success(), report)
}

async fn sql(s: &Server, statements: &[&str]) {
    let db = keyward_store::connect(&s.db_url()).await.unwrap();
    for statement in statements {
        db.execute_unprepared(statement).await.unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
}

/// What a DBA can do: lift the append-only triggers.
fn disable_triggers(db: &Db) -> Vec<&'static str> {
    match db {
        Db::Postgres(_) => {
            vec!["ALTER TABLE audit_records DISABLE TRIGGER USER", "ALTER TABLE audit_checkpoints DISABLE TRIGGER USER"]
        }
        Db::Sqlite => vec![
            "DROP TRIGGER audit_records_no_update",
            "DROP TRIGGER audit_records_no_delete",
            "DROP TRIGGER audit_checkpoints_no_delete",
        ],
    }
}

/// Which record id the report must name, given the trail's record ids.
type ExpectedRecord = Box<dyn Fn(&[i64]) -> Value>;

/// The statements that tamper with a trail, given its record ids.
type Tamper = Box<dyn Fn(&[i64]) -> Vec<String>>;

on_both_databases!(tampering_is_detected);

async fn tampering_is_detected(db: Db) {
    // Intact: verifies, every record chained and covered.
    let (s, ids) = trail(db.clone()).await;
    let (ok, report) = verify(&s);
    assert!(ok, "{report}");
    assert!(report["records_checked"].as_u64().unwrap() >= ids.len() as u64);
    assert!(report["checkpoints_checked"].as_u64().unwrap() >= 1);
    // Append-only without a DBA's help.
    let db_conn = keyward_store::connect(&s.db_url()).await.unwrap();
    assert!(db_conn.execute_unprepared("UPDATE audit_records SET outcome = 'x'").await.is_err());
    assert!(db_conn.execute_unprepared("DELETE FROM audit_records").await.is_err());
    drop(db_conn);

    // Each case tampers with a fresh trail, at the middle of that trail's longest chain (which
    // worker's chain that is varies from run to run).
    let middle = |ids: &[i64]| ids[ids.len() / 2];
    let after = |ids: &[i64]| ids[ids.len() / 2 + 1];
    let cases: Vec<(&str, Tamper, ExpectedRecord)> = vec![
        (
            "an edited field",
            Box::new(move |ids| {
                vec![format!("UPDATE audit_records SET outcome = 'AccessDenied' WHERE id = {}", middle(ids))]
            }),
            Box::new(move |ids| json!(middle(ids))),
        ),
        (
            "a deleted middle row",
            Box::new(move |ids| vec![format!("DELETE FROM audit_records WHERE id = {}", middle(ids))]),
            Box::new(move |ids| json!(ids[ids.len() / 2 + 1])),
        ),
        (
            "swapped rows",
            Box::new(move |ids| {
                let (m, a) = (middle(ids), after(ids));
                vec![
                    format!("UPDATE audit_records SET id = -1 WHERE id = {m}"),
                    format!("UPDATE audit_records SET id = {m} WHERE id = {a}"),
                    format!("UPDATE audit_records SET id = {a} WHERE id = -1"),
                ]
            }),
            // The later record now sits before the earlier one.
            Box::new(move |ids| json!(middle(ids))),
        ),
    ];
    for (name, tamper, expected) in cases {
        let (s, ids) = trail(db.clone()).await;
        let mut all: Vec<String> = disable_triggers(&s.db).into_iter().map(str::to_owned).collect();
        all.extend(tamper(&ids));
        sql(&s, &all.iter().map(String::as_str).collect::<Vec<_>>()).await;
        let (ok, report) = verify(&s);
        assert!(!ok, "{name} not detected: {report}");
        assert_eq!(report["first_break"]["record_id"], expected(&ids), "{name}: {report}");
    }

    // A deleted tail: the final checkpoint proves the chain went further.
    let (s, ids) = trail(db.clone()).await;
    let mut all = disable_triggers(&s.db);
    let cut = format!("DELETE FROM audit_records WHERE id IN ({}, {})", ids[ids.len() - 2], ids[ids.len() - 1]);
    all.push(&cut);
    sql(&s, &all).await;
    let (ok, report) = verify(&s);
    assert!(!ok, "{report}");
    assert!(report["first_break"]["reason"].as_str().unwrap().contains("tail"), "{report}");
    assert!(report["first_break"]["checkpoint_id"].is_number(), "{report}");

    // A forged checkpoint (someone else's signature).
    let (s, _) = trail(db.clone()).await;
    let rows =
        s.audit_store().await.query(&keyward_store::AuditQuery { limit: 1000, ..Default::default() }).await.unwrap();
    let last = rows.last().unwrap();
    let key_id: String = {
        let db = keyward_store::connect(&s.db_url()).await.unwrap();
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT key_id FROM audit_checkpoints LIMIT 1",
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get("", "key_id").unwrap()
    };
    let forged = format!(
        "INSERT INTO audit_checkpoints (chain_id, sequence, head_hash, time, key_id, signature) VALUES ('{}', {}, '{}', 0, '{key_id}', '{}')",
        last.chain_id.clone().unwrap(),
        last.sequence.unwrap(),
        last.hash.clone().unwrap(),
        "ab".repeat(64)
    );
    sql(&s, &[&forged]).await;
    let (ok, report) = verify(&s);
    assert!(!ok, "{report}");
    assert!(report["first_break"]["reason"].as_str().unwrap().contains("signature"), "{report}");
}

on_both_databases!(query_and_verify_over_the_api);

async fn query_and_verify_over_the_api(db: Db) {
    let s = Server::start(db).await;
    let key = s.create_key("audit").await;
    let bob = s.token("bob", &["audit"]);
    for i in 0..5 {
        let r = s.call("POST", &format!("/v1/keys/{key}/encrypt"), &bob, Some(json!({"plaintext": b64(&[i])}))).await;
        assert_eq!(r.status, 200);
    }
    let other = s.create_key("elsewhere").await;
    let r = s.call("POST", &format!("/v1/keys/{other}/encrypt"), &bob, Some(json!({"plaintext": b64(b"x")}))).await;
    assert_eq!(r.code(), "AccessDenied");

    // Filters and pagination.
    let page = async |q: &str| s.get(&format!("/v1/audit?{q}")).await;
    let r = page(&format!("key_id={key}&action=Encrypt&limit=3")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let first = r.body["records"].as_array().unwrap().clone();
    assert_eq!(first.len(), 3);
    let next = r.s("next_token");
    let r = page(&format!("key_id={key}&action=Encrypt&limit=3&next_token={next}")).await;
    let second = r.body["records"].as_array().unwrap().clone();
    assert_eq!(second.len(), 2);
    assert!(r.body["next_token"].is_null());
    let record = &first[0];
    assert_eq!(record["principal"], r#"Keyward::User::"bob""#);
    assert_eq!(record["principal_groups"], json!(["audit"]));
    assert_eq!(record["decision"], "Allow");
    assert_eq!(record["outcome"], "Success");
    assert_eq!(record["determining_policies"], json!(["namespace-members-use"]));
    assert!(
        record["hash"].as_str().unwrap().len() == 64
            && record["sequence"].is_number()
            && record["chain_id"].is_string()
    );
    assert!(record.get("reason").is_none(), "private failure reasons stay out of the API");
    let r = page("decision=Deny&principal=Keyward::User::%22bob%22").await;
    let denied = r.body["records"].as_array().unwrap();
    assert_eq!(denied.len(), 1, "{}", r.body);
    assert_eq!(denied[0]["key_id"], other);
    let r = page("from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z").await;
    assert_eq!(r.body["records"], json!([]));
    assert_eq!(page("decision=Maybe").await.code(), "InvalidRequest");
    // Reading the trail needs a policy (ReadAudit): members may not.
    assert_eq!(s.call("GET", "/v1/audit", &bob, None).await.code(), "AccessDenied");
    assert_eq!(s.call("POST", "/v1/audit/verify", &bob, None).await.code(), "AccessDenied");

    let r = s.call("POST", "/v1/audit/verify", &s.admin, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["ok"], true, "{}", r.body);
    assert!(r.body["records_checked"].as_u64().unwrap() >= 8);
}
