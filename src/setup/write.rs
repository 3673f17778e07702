//! A client's config file, changed in one entry: every other server, every
//! other key, comment and line of the file stays as the user wrote it; the old
//! file is kept beside it; the new one takes its place in one rename, so a
//! client never reads half a file.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use jsonc_parser::ParseOptions;
use jsonc_parser::cst::{CstInputValue, CstObject, CstRootNode};
use serde_json::Value;

use super::SetupError;

/// Config files are a few KiB; anything this large is not one.
const MAX_CONFIG_BYTES: u64 = 16 * 1024 * 1024;
/// Backups made within the same second get a counter, up to this many.
const MAX_BACKUPS_PER_SECOND: u32 = 100;

/// A config file read and parsed, ready to change.
pub struct Document {
    /// The path as the user knows it, for messages.
    shown: PathBuf,
    /// The file actually replaced: a symlinked config (dotfile managers) is
    /// written through its link, not replaced by a plain file.
    target: PathBuf,
    original: Option<Vec<u8>>,
    permissions: Option<fs::Permissions>,
    root: CstRootNode,
}

impl Document {
    /// Reads `path`; a missing file is an empty document. `comments`: the
    /// client reads JSON with comments and trailing commas (VS Code).
    pub fn load(path: &Path, comments: bool) -> Result<Self, SetupError> {
        let read_error = |source| SetupError::Read {
            path: path.to_owned(),
            source,
        };
        let (target, original, permissions) = match fs::metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => (path.to_owned(), None, None),
            Err(e) => return Err(read_error(e)),
            Ok(meta) if meta.len() > MAX_CONFIG_BYTES => {
                return Err(SetupError::NotJson {
                    path: path.to_owned(),
                    reason: format!("it is {} bytes, too large for a config file", meta.len()),
                });
            }
            Ok(meta) => {
                let target = fs::canonicalize(path).map_err(read_error)?;
                let bytes = fs::read(&target).map_err(read_error)?;
                (target, Some(bytes), Some(meta.permissions()))
            }
        };
        let text = match &original {
            Some(bytes) => std::str::from_utf8(bytes).map_err(|e| SetupError::NotJson {
                path: path.to_owned(),
                reason: format!("it is not UTF-8 text ({e})"),
            })?,
            None => "",
        };
        // The CST parser lets comments through whatever the options say, so
        // strict JSON is checked by the parser such clients use.
        if !comments && !text.trim().is_empty() {
            serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(|e| {
                SetupError::NotJson {
                    path: path.to_owned(),
                    reason: e.to_string(),
                }
            })?;
        }
        let root = CstRootNode::parse(text, &parse_options(comments)).map_err(|e| {
            SetupError::NotJson {
                path: path.to_owned(),
                reason: e.to_string(),
            }
        })?;
        let doc = Self {
            shown: path.to_owned(),
            target,
            original,
            permissions,
            root,
        };
        if doc.root.value().is_some() && doc.root.object_value().is_none() {
            return Err(doc.not_an_object("the whole file"));
        }
        Ok(doc)
    }

    /// Whether the file existed before (and so gets a backup).
    pub fn existed(&self) -> bool {
        self.original.is_some()
    }

    /// The entry `name` under `servers_key`, if there is one.
    pub fn server(&self, servers_key: &str, name: &str) -> Result<Option<Value>, SetupError> {
        let Some(servers) = self.servers(servers_key, false)? else {
            return Ok(None);
        };
        Ok(servers
            .get(name)
            .and_then(|prop| prop.value())
            .and_then(|value| value.to_serde_value()))
    }

    /// Sets the entry `name` under `servers_key`, in place if it exists
    /// (keeping its position), else after the other servers.
    pub fn set_server(
        &self,
        servers_key: &str,
        name: &str,
        entry: CstInputValue,
    ) -> Result<(), SetupError> {
        let Some(servers) = self.servers(servers_key, true)? else {
            return Err(self.not_an_object(servers_key));
        };
        match servers.get(name) {
            Some(prop) => prop.set_value(entry),
            None => {
                servers.append(name, entry);
            }
        }
        Ok(())
    }

    /// Sets the element of the `inputs` list whose `id` is `id`.
    pub fn set_input(&self, id: &str, input: CstInputValue) -> Result<(), SetupError> {
        let root = self.root_object()?;
        let Some(inputs) = root.array_value_or_create("inputs") else {
            return Err(SetupError::NotAnObject {
                path: self.shown.clone(),
                what: "\"inputs\" (which should be a list)".into(),
            });
        };
        let same_id = inputs
            .elements()
            .into_iter()
            .filter_map(|element| element.as_object())
            .find(|element| {
                element
                    .to_serde_value()
                    .is_some_and(|value| value.get("id").and_then(Value::as_str) == Some(id))
            });
        match same_id {
            Some(element) => {
                element.replace_with(input);
            }
            None => {
                inputs.append(input);
            }
        }
        Ok(())
    }

    /// Writes the document: the old file (if any) first to a backup beside
    /// it, then the new text to a temporary file beside it, renamed over it.
    /// Returns the backup's path.
    pub fn save(self) -> Result<Option<PathBuf>, SetupError> {
        let write_error = |source| SetupError::Write {
            path: self.shown.clone(),
            source,
        };
        let dir = match self.target.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        if self.original.is_none() {
            fs::create_dir_all(&dir).map_err(write_error)?;
        }
        let backup = match &self.original {
            Some(bytes) => Some(
                backup(&self.target, &dir, bytes, self.permissions.as_ref()).map_err(|source| {
                    SetupError::Backup {
                        path: self.shown.clone(),
                        source,
                    }
                })?,
            ),
            None => None,
        };
        let mut text = self.root.to_string();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        let file =
            temp_file(&dir, text.as_bytes(), self.permissions.as_ref()).map_err(write_error)?;
        file.persist(&self.target)
            .map_err(|e| write_error(e.error))?;
        Ok(backup)
    }

    fn root_object(&self) -> Result<CstObject, SetupError> {
        self.root
            .object_value_or_create()
            .ok_or_else(|| self.not_an_object("the whole file"))
    }

    fn servers(&self, key: &str, create: bool) -> Result<Option<CstObject>, SetupError> {
        let root = self.root_object()?;
        if create {
            return Ok(root.object_value_or_create(key));
        }
        match root.get(key) {
            None => Ok(None),
            Some(prop) => match prop.object_value() {
                Some(servers) => Ok(Some(servers)),
                None => Err(self.not_an_object(key)),
            },
        }
    }

    fn not_an_object(&self, what: &str) -> SetupError {
        SetupError::NotAnObject {
            path: self.shown.clone(),
            what: if what == "the whole file" {
                what.to_owned()
            } else {
                format!("{what:?}")
            },
        }
    }
}

/// Strict JSON, or JSON with comments and trailing commas (what VS Code
/// reads). Never the other JSON5 liberties: no client reads them.
fn parse_options(comments: bool) -> ParseOptions {
    ParseOptions {
        allow_comments: comments,
        allow_trailing_commas: comments,
        allow_loose_object_property_names: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    }
}

/// `value` as a JSON document, laid out as the entries written to files.
pub fn render(value: CstInputValue) -> String {
    match CstRootNode::parse("", &parse_options(false)) {
        Ok(root) => {
            root.set_value(value);
            let mut text = root.to_string();
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text
        }
        // Parsing nothing cannot fail; if it ever did, say so rather than
        // print half a snippet.
        Err(e) => format!("(cannot lay out the snippet: {e})"),
    }
}

/// A temporary file beside the target holding `bytes`, flushed to disk.
/// tempfile creates it readable by the owner only; it then takes the old
/// file's permissions, so a config the user shared stays shared and one
/// holding a key stays private.
fn temp_file(
    dir: &Path,
    bytes: &[u8],
    permissions: Option<&fs::Permissions>,
) -> io::Result<tempfile::NamedTempFile> {
    let mut file = tempfile::Builder::new()
        .prefix(".hienergy-setup-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    file.write_all(bytes)?;
    if let Some(permissions) = permissions {
        file.as_file().set_permissions(permissions.clone())?;
    }
    file.as_file().sync_all()?;
    Ok(file)
}

/// `<name>.<UTC time>.bak` beside the file, never overwriting an earlier
/// backup: the first one holds the file as it was before any setup.
fn backup(
    target: &Path,
    dir: &Path,
    bytes: &[u8],
    permissions: Option<&fs::Permissions>,
) -> io::Result<PathBuf> {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config".into());
    // No ':' in the name: Windows does not allow it.
    let stamp = humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .replace(['-', ':'], "");
    let mut file = temp_file(dir, bytes, permissions)?;
    for n in 0..MAX_BACKUPS_PER_SECOND {
        let path = match n {
            0 => dir.join(format!("{name}.{stamp}.bak")),
            n => dir.join(format!("{name}.{stamp}-{n}.bak")),
        };
        match file.persist_noclobber(&path) {
            Ok(_) => return Ok(path),
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => file = e.file,
            Err(e) => return Err(e.error),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{MAX_BACKUPS_PER_SECOND} backups of {name} already exist for this second"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn temp_dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"))
    }

    fn merged(text: &str, comments: bool) -> Result<String, SetupError> {
        let dir = temp_dir();
        let path = dir.path().join("config.json");
        fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        let doc = Document::load(&path, comments)?;
        let entry = CstInputValue::Object(vec![(
            "command".into(),
            CstInputValue::String("/bin/h".into()),
        )]);
        doc.set_server("mcpServers", "hienergy", entry)?;
        doc.save()?;
        Ok(fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}")))
    }

    #[test]
    fn keeps_layout_order_and_other_entries() {
        let text = "{\n    \"z\": 1,\n    \"mcpServers\": {\n        \"other\": {\"command\": \"x\"}\n    },\n    \"a\": [1, 2]\n}\n";
        let out = merged(text, false).unwrap_or_else(|e| panic!("{e}"));
        assert!(out.starts_with("{\n    \"z\": 1,\n    \"mcpServers\": {\n        \"other\": {\"command\": \"x\"},\n        \"hienergy\": {"), "{out}");
        assert!(out.ends_with("    \"a\": [1, 2]\n}\n"), "{out}");
        let value: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert_eq!(value["mcpServers"]["hienergy"]["command"], "/bin/h");
    }

    #[test]
    fn empty_file_becomes_an_object() {
        let out = merged("  \n", false).unwrap_or_else(|e| panic!("{e}"));
        let value: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert_eq!(
            value,
            json!({"mcpServers": {"hienergy": {"command": "/bin/h"}}})
        );
    }

    #[test]
    fn strict_json_refuses_comments_and_other_liberties() {
        for bad in [
            "{\"a\": 1 // c\n}",
            "{\"a\": 1,}",
            "{a: 1}",
            "{\"a\": 'x'}",
            "{\"a\": 0x1}",
            "{\"a\": 1",
            "[1]",
        ] {
            assert!(merged(bad, false).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn jsonc_keeps_comments() {
        let out = merged("{\n  // mine\n  \"mcpServers\": {},\n}\n", true)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(out.contains("// mine"), "{out}");
    }

    #[test]
    fn a_servers_key_that_is_not_an_object_is_refused() {
        let err = merged("{\"mcpServers\": []}", false).err();
        assert!(
            matches!(err, Some(SetupError::NotAnObject { .. })),
            "{err:?}"
        );
    }
}
