//! The MCPB manifest must describe the binary that is actually built.

use crate::common::*;
use serde_json::Value;

fn manifest() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/mcp-manifest.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

#[test]
fn manifest_version_matches_cargo() {
    let manifest = manifest();
    assert_eq!(manifest["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(manifest["name"], env!("CARGO_PKG_NAME"));
    assert_eq!(manifest["manifest_version"], "0.3");
}

#[test]
fn manifest_passes_the_key_through_a_sensitive_required_setting() {
    let manifest = manifest();
    assert_eq!(manifest["server"]["type"], "binary");
    assert_eq!(
        manifest["server"]["mcp_config"]["env"]["HIENERGY_API_KEY"],
        "${user_config.api_key}"
    );
    let api_key = &manifest["user_config"]["api_key"];
    assert_eq!(api_key["sensitive"], true);
    assert_eq!(api_key["required"], true);
    assert_eq!(manifest["user_config"]["base_url"]["required"], false);
    assert_eq!(
        manifest["user_config"]["base_url"]["default"],
        hienergy_mcp::config::DEFAULT_BASE_URL
    );
}

#[tokio::test]
async fn manifest_tools_match_tools_list() {
    let client = sdk_client(command("https://app.hienergy.ai", None, &[])).await;
    let mut served: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap_or_else(|e| panic!("tools/list: {e}"))
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    let mut declared: Vec<String> = manifest()["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    served.sort();
    declared.sort();
    assert_eq!(declared, served);
    let _ = client.cancel().await;
}

#[test]
fn manifest_describes_the_order_find_the_advertiser_then_add() {
    let manifest = manifest();
    for member in ["description", "long_description"] {
        let text = manifest[member].as_str().unwrap_or_default();
        let find = text.find("search_advertisers");
        let add = text.find("add_contact");
        assert!(
            find.is_some() && find < add,
            "{member} names search_advertisers before add_contact: {text}"
        );
    }
}
