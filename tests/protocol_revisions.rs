//! Both ways of starting a session, spoken by hand: the 2026-07-28
//! revision (no `initialize`; the protocol version and client capabilities
//! ride in `_meta` on every request), which Claude Code and the Python SDK
//! already use, and the older revisions that begin with `initialize`.

use crate::common::{TEST_KEY, command, posts};
use crate::fault_kit::{Proc, contact, created_fake, result_of, tool_contact};
use serde_json::{Value, json};

const NEW_REVISION: &str = "2026-07-28";

fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": NEW_REVISION,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"}
    })
}

#[tokio::test]
async fn the_2026_07_28_revision_needs_no_initialize() {
    let mock = created_fake().await;
    let mut proc = Proc::spawn(command(&mock.uri(), Some(TEST_KEY), &[]));
    let listed = result_of(&proc.request("tools/list", json!({"_meta": meta()})).await);
    let tools = listed["tools"].as_array().cloned().unwrap_or_default();
    assert!(tools.iter().any(|t| t["name"] == "add_contact"), "{listed}");

    let mut dry = contact("rev");
    dry["dry_run"] = json!(true);
    let preview = result_of(
        &proc
            .request(
                "tools/call",
                json!({"name": "add_contact", "arguments": dry, "_meta": meta()}),
            )
            .await,
    );
    assert_eq!(preview["structuredContent"]["dry_run"], true, "{preview}");
    assert_eq!(posts(&mock).await, 0);

    let created = result_of(
        &proc
            .request(
                "tools/call",
                json!({"name": "add_contact", "arguments": contact("rev"), "_meta": meta()}),
            )
            .await,
    );
    tool_contact(&created);
    assert_eq!(posts(&mock).await, 1);

    // Without its _meta, a request in such a session is refused by its id.
    let refused = proc
        .request(
            "tools/call",
            json!({"name": "add_contact", "arguments": contact("rev2")}),
        )
        .await;
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    assert_eq!(posts(&mock).await, 1);
    // The session goes on.
    let again = result_of(&proc.request("tools/list", json!({"_meta": meta()})).await);
    assert_eq!(again["tools"], listed["tools"]);
    proc.finish_ok().await;
}

#[tokio::test]
async fn older_revisions_begin_with_initialize() {
    let mock = created_fake().await;
    for revision in ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"] {
        let mut proc = Proc::spawn(command(&mock.uri(), Some(TEST_KEY), &[]));
        let init = result_of(
            &proc
                .request(
                    "initialize",
                    json!({
                        "protocolVersion": revision,
                        "capabilities": {},
                        "clientInfo": {"name": "raw", "version": "1"}
                    }),
                )
                .await,
        );
        assert_eq!(init["protocolVersion"], revision, "{init}");
        assert_eq!(init["serverInfo"]["name"], "hienergy-mcp");
        assert!(init["capabilities"]["tools"].is_object(), "{init}");
        proc.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        let listed = result_of(&proc.request("tools/list", json!({})).await);
        let mut names: Vec<&str> = listed["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["name"].as_str())
            .collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "add_contact",
                "add_contacts",
                "search_advertisers",
                "search_contacts"
            ],
            "{revision}: {listed}"
        );
        tool_contact(&proc.call(contact(&format!("rev-{revision}"))).await);
        proc.finish_ok().await;
    }
}
