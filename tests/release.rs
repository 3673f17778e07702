//! The release setup the project promises, checked against the files dist
//! reads: `dist init` rewrites them, and would silently drop a promise.

use toml_edit::{DocumentMut, Item};

fn toml(name: &str) -> DocumentMut {
    let path = format!("{}/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.parse()
        .unwrap_or_else(|e| panic!("{path} is not TOML: {e}"))
}

fn strings(item: &Item) -> Vec<String> {
    item.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn released_binaries_are_built_with_our_release_profile() {
    let cargo = toml("Cargo.toml");
    let dist = cargo["profile"]["dist"]
        .as_table()
        .unwrap_or_else(|| panic!("Cargo.toml has no [profile.dist]"));
    let keys: Vec<&str> = dist.iter().map(|(k, _)| k).collect();
    // `dist init` adds `lto = "thin"`: anything besides `inherits` would make
    // the released binary differ from the measured one.
    assert_eq!(keys, ["inherits"]);
    assert_eq!(dist["inherits"].as_str(), Some("release"));
}

#[test]
fn every_promised_target_and_installer_is_configured() {
    let dist = toml("dist-workspace.toml");
    let mut targets = strings(&dist["dist"]["targets"]);
    targets.sort();
    assert_eq!(
        targets,
        [
            "aarch64-apple-darwin",
            "aarch64-unknown-linux-gnu",
            "x86_64-apple-darwin",
            "x86_64-pc-windows-msvc",
            "x86_64-unknown-linux-gnu",
        ]
    );
    let installers = strings(&dist["dist"]["installers"]);
    for installer in ["shell", "powershell", "npm", "homebrew"] {
        assert!(
            installers.iter().any(|i| i == installer),
            "no {installer} installer"
        );
    }
    assert_eq!(
        strings(&dist["dist"]["global-artifacts-jobs"]),
        ["./build-mcpb"]
    );
}

#[test]
fn the_generated_workflow_calls_the_bundle_job() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/.github/workflows/release.yml");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // dist 0.34 writes the repository root as `$/` (older versions `./`).
    let calls = text.lines().any(|line| {
        let line = line.trim();
        line.starts_with("uses: ") && line.ends_with("/.github/workflows/build-mcpb.yml")
    });
    assert!(
        calls,
        "release.yml does not call build-mcpb.yml: run `dist generate`"
    );
}
