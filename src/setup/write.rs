//! A client's config file, changed in one entry: every other server, every
//! other key, comment and line of the file stays as the user wrote it; the old
//! file is kept beside it; the new one takes its place in one rename, so a
//! client never reads half a file.
//!
//! Never lose or expose what is in the file: the change is made under a lock
//! (a `<file>.lock` beside it, so two `setup` runs take turns), and the file
//! is compared with what was read just before the rename (a program that
//! takes no lock, such as the client itself, may have written it: it is read
//! again and the change made anew). Only a regular file, or a symlink to one,
//! is edited. A file that holds the key is readable by its owner only.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use jsonc_parser::ParseOptions;
use jsonc_parser::cst::{CstInputValue, CstLeafNode, CstNode, CstObject, CstRootNode};

use super::SetupError;

/// Config files are a few KiB; anything this large is not one. Editing is
/// linear in the size (a 15 MB config takes about 2 s).
const MAX_CONFIG_BYTES: u64 = 16 * 1024 * 1024;
/// Backups made within the same second get a counter, up to this many.
const MAX_BACKUPS_PER_SECOND: u32 = 100;
/// How many times a file changed underneath (between our read and our
/// rename) is read again before giving up.
const MAX_ATTEMPTS: u32 = 5;

/// How a client reads its config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON; `comments`: the client strips comments first; `trailing_commas`:
    /// it also accepts a comma after the last member.
    Json {
        comments: bool,
        trailing_commas: bool,
    },
    Toml,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Json { .. } => "JSON",
            Format::Toml => "TOML",
        }
    }
}

enum Tree {
    Json(CstRootNode),
    Toml(toml_edit::DocumentMut),
}

/// A config file's text, parsed, ready to change.
pub struct Document {
    /// The path as the user knows it, for messages.
    shown: PathBuf,
    tree: Tree,
}

impl Document {
    /// Parses `text`; empty text is an empty document.
    pub fn parse(text: &str, format: Format, shown: &Path) -> Result<Self, SetupError> {
        let unparsable = |reason: String| SetupError::Unparsable {
            path: shown.to_owned(),
            format: format.name(),
            reason,
        };
        let tree = match format {
            Format::Toml => Tree::Toml(
                text.parse::<toml_edit::DocumentMut>()
                    .map_err(|e| unparsable(e.to_string()))?,
            ),
            Format::Json {
                comments,
                trailing_commas,
            } => {
                // The CST parser lets comments through whatever the options
                // say, so strict JSON is checked by the parser such clients use.
                if !comments && !text.trim().is_empty() {
                    serde_json::from_str::<serde::de::IgnoredAny>(text)
                        .map_err(|e| unparsable(e.to_string()))?;
                }
                let options = parse_options(comments, trailing_commas);
                let root =
                    CstRootNode::parse(text, &options).map_err(|e| unparsable(e.to_string()))?;
                if let Some(member) = root.value().and_then(|v| duplicate(&v, "")) {
                    return Err(SetupError::Duplicate {
                        path: shown.to_owned(),
                        member,
                    });
                }
                Tree::Json(root)
            }
        };
        let doc = Self {
            shown: shown.to_owned(),
            tree,
        };
        if let Tree::Json(root) = &doc.tree
            && root.value().is_some()
            && root.object_value().is_none()
        {
            return Err(doc.not_an_object("the whole file"));
        }
        Ok(doc)
    }

    /// The command of the entry `name` under `servers_key` (`"none"` if it
    /// has none), or `None` when there is no such entry.
    pub fn existing(&self, servers_key: &str, name: &str) -> Result<Option<String>, SetupError> {
        let command_text = |value: Option<serde_json::Value>| match value {
            None => "none".to_owned(),
            Some(serde_json::Value::String(s)) => s,
            // opencode's command is a list: [program, args...].
            Some(serde_json::Value::Array(parts)) => parts
                .iter()
                .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(" "),
            Some(other) => other.to_string(),
        };
        match &self.tree {
            Tree::Json(root) => {
                let Some(root) = root.object_value() else {
                    return Ok(None);
                };
                let Some(servers) = root.get(servers_key) else {
                    return Ok(None);
                };
                let servers = servers
                    .object_value()
                    .ok_or_else(|| self.not_an_object(servers_key))?;
                Ok(servers.get(name).map(|entry| {
                    let command = entry
                        .value()
                        .and_then(|v| v.to_serde_value())
                        .and_then(|v| v.get("command").cloned());
                    command_text(command)
                }))
            }
            Tree::Toml(doc) => {
                let Some(servers) = doc.get(servers_key) else {
                    return Ok(None);
                };
                let servers = servers
                    .as_table_like()
                    .ok_or_else(|| self.not_an_object(servers_key))?;
                Ok(servers.get(name).map(|entry| {
                    let command = entry
                        .as_table_like()
                        .and_then(|t| t.get("command"))
                        .and_then(|c| c.as_str())
                        .map(|c| serde_json::Value::String(c.to_owned()));
                    command_text(command)
                }))
            }
        }
    }

    /// Sets the entry `name` under `servers_key`, in place if it exists
    /// (keeping its position), else after the other servers.
    pub fn set_server(
        &mut self,
        servers_key: &str,
        name: &str,
        entry: CstInputValue,
    ) -> Result<(), SetupError> {
        let not_an_object = self.not_an_object(servers_key);
        let whole_file = self.not_an_object("the whole file");
        match &mut self.tree {
            Tree::Json(root) => {
                let root_object = root.object_value_or_create().ok_or(whole_file)?;
                let Some(servers) = root_object.get(servers_key) else {
                    let servers = CstInputValue::Object(vec![(name.to_owned(), entry)]);
                    append(&root_object, servers_key, servers, |all| {
                        root.set_value(all)
                    });
                    return Ok(());
                };
                let object = servers.object_value().ok_or(not_an_object)?;
                match object.get(name) {
                    Some(prop) => prop.set_value(entry),
                    None => append(&object, name, entry, |all| servers.set_value(all)),
                }
                Ok(())
            }
            Tree::Toml(doc) => {
                let servers = doc.entry(servers_key).or_insert_with(|| {
                    // `[mcp_servers.hienergy]` alone, without a bare
                    // `[mcp_servers]` above it.
                    let mut table = toml_edit::Table::new();
                    table.set_implicit(true);
                    toml_edit::Item::Table(table)
                });
                let inline = !servers.is_table();
                let servers = servers.as_table_like_mut().ok_or(not_an_object)?;
                let mut item = toml_item(entry, inline);
                // A replaced entry stays where it was in the file.
                let old = servers.get(name).and_then(|i| i.as_table()?.position());
                if let (Some(position), toml_edit::Item::Table(table)) = (old, &mut item) {
                    table.set_position(Some(position));
                    for (_, sub) in table.iter_mut() {
                        if let Some(sub) = sub.as_table_mut() {
                            sub.set_position(Some(position));
                        }
                    }
                }
                servers.insert(name, item);
                Ok(())
            }
        }
    }

    /// Sets the element of the `inputs` list whose `id` is `id` (JSON only:
    /// VS Code's prompts).
    pub fn set_input(&mut self, id: &str, input: CstInputValue) -> Result<(), SetupError> {
        let not_a_list = || SetupError::NotAnObject {
            path: self.shown.clone(),
            what: "\"inputs\" (which should be a list)".into(),
        };
        let Tree::Json(root) = &self.tree else {
            return Err(not_a_list());
        };
        let root = root
            .object_value_or_create()
            .ok_or_else(|| self.not_an_object("the whole file"))?;
        let inputs = root
            .array_value_or_create("inputs")
            .ok_or_else(not_a_list)?;
        let same_id = inputs
            .elements()
            .into_iter()
            .filter_map(|element| element.as_object())
            .find(|element| {
                element.to_serde_value().is_some_and(|value| {
                    value.get("id").and_then(serde_json::Value::as_str) == Some(id)
                })
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

    /// The document's text, ending in a newline.
    pub fn text(&self) -> String {
        let mut text = match &self.tree {
            Tree::Json(root) => root.to_string(),
            Tree::Toml(doc) => doc.to_string(),
        };
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text
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

/// Appends `name: value` to `object`. jsonc-parser first splits a one-line
/// object into lines member by member, renumbering every later member each
/// time: quadratic (5,000 servers on one line took 4 s, 10,000 took 23 s).
/// A one-line object without comments is instead rebuilt whole, which
/// lays it out the same way in one pass; `replace` puts it in place.
/// (Upstream, `ensure_multiline` building the children in one pass would
/// make this unnecessary.)
fn append(
    object: &CstObject,
    name: &str,
    value: CstInputValue,
    replace: impl FnOnce(CstInputValue),
) {
    let one_line = !object.children().iter().any(CstNode::is_newline);
    let whole = match one_line {
        true => input_value(&CstNode::Container(object.clone().into())),
        false => None,
    };
    match whole {
        Some(CstInputValue::Object(mut members)) => {
            members.push((name.to_owned(), value));
            replace(CstInputValue::Object(members));
        }
        _ => {
            object.append(name, value);
        }
    }
}

/// `node` as a value to write back, or `None` if it holds a comment (which
/// rebuilding would drop).
fn input_value(node: &CstNode) -> Option<CstInputValue> {
    if let Some(object) = node.as_object() {
        if object.children().iter().any(CstNode::is_comment) {
            return None;
        }
        let mut members = Vec::new();
        for prop in object.properties() {
            if prop.children().iter().any(CstNode::is_comment) {
                return None;
            }
            members.push((prop.decoded_name()?, input_value(&prop.value()?)?));
        }
        return Some(CstInputValue::Object(members));
    }
    if let Some(array) = node.as_array() {
        if array.children().iter().any(CstNode::is_comment) {
            return None;
        }
        let elements = array.elements();
        let elements = elements.iter().map(input_value);
        return elements
            .collect::<Option<Vec<_>>>()
            .map(CstInputValue::Array);
    }
    match node {
        CstNode::Leaf(CstLeafNode::StringLit(s)) => {
            s.decoded_value().ok().map(CstInputValue::String)
        }
        CstNode::Leaf(CstLeafNode::NumberLit(n)) => Some(CstInputValue::Number(n.to_string())),
        CstNode::Leaf(CstLeafNode::BooleanLit(b)) => Some(CstInputValue::Bool(b.value())),
        CstNode::Leaf(CstLeafNode::NullKeyword(_)) => Some(CstInputValue::Null),
        _ => None,
    }
}

/// The first member name that appears twice in one object, as a path
/// (`mcpServers.hienergy`): clients read the last copy, an edit would change
/// the first.
fn duplicate(node: &CstNode, at: &str) -> Option<String> {
    let path = |name: &str| match at {
        "" => name.to_owned(),
        at => format!("{at}.{name}"),
    };
    if let Some(object) = node.as_object() {
        let mut seen = HashSet::new();
        for prop in object.properties() {
            let name = prop.decoded_name().unwrap_or_default();
            let here = path(&name);
            if !seen.insert(name) {
                return Some(here);
            }
            if let Some(found) = prop.value().and_then(|v| duplicate(&v, &here)) {
                return Some(found);
            }
        }
    } else if let Some(array) = node.as_array() {
        for (i, element) in array.elements().iter().enumerate() {
            if let Some(found) = duplicate(element, &format!("{at}[{i}]")) {
                return Some(found);
            }
        }
    }
    None
}

/// An entry as TOML: objects become tables (`[mcp_servers.hienergy.env]`),
/// or inline tables inside an inline table or a list.
fn toml_item(value: CstInputValue, inline: bool) -> toml_edit::Item {
    match value {
        CstInputValue::Object(members) if !inline => {
            let mut table = toml_edit::Table::new();
            for (key, value) in members {
                table.insert(&key, toml_item(value, false));
            }
            toml_edit::Item::Table(table)
        }
        other => toml_value(other).map_or(toml_edit::Item::None, toml_edit::Item::Value),
    }
}

fn toml_value(value: CstInputValue) -> Option<toml_edit::Value> {
    Some(match value {
        CstInputValue::Null => return None,
        CstInputValue::Bool(b) => b.into(),
        CstInputValue::String(s) => s.into(),
        CstInputValue::Number(n) => match n.parse::<i64>() {
            Ok(i) => i.into(),
            Err(_) => n.parse::<f64>().ok()?.into(),
        },
        CstInputValue::Array(elements) => {
            toml_edit::Value::Array(elements.into_iter().filter_map(toml_value).collect())
        }
        CstInputValue::Object(members) => {
            let mut table = toml_edit::InlineTable::new();
            for (key, value) in members {
                if let Some(value) = toml_value(value) {
                    table.insert(&key, value);
                }
            }
            toml_edit::Value::InlineTable(table)
        }
    })
}

/// Strict JSON, or JSON with comments (and trailing commas, where the client
/// reads them). Never the other JSON5 liberties: no client reads them.
fn parse_options(comments: bool, trailing_commas: bool) -> ParseOptions {
    ParseOptions {
        allow_comments: comments,
        allow_trailing_commas: trailing_commas,
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

/// The file to edit: `path` itself, or the file a symlink at `path` points
/// to (dotfile managers link configs; the link stays a link).
struct Target {
    path: PathBuf,
}

impl Target {
    /// Refuses anything but a regular file, a symlink to one, or nothing:
    /// opening a FIFO would wait forever, and a device or a dangling link
    /// would be replaced by a plain file holding the key.
    fn resolve(shown: &Path) -> Result<Self, SetupError> {
        let read_error = |source| SetupError::Read {
            path: shown.to_owned(),
            source,
        };
        let not_a_file = |what: &str| SetupError::NotAFile {
            path: shown.to_owned(),
            what: what.to_owned(),
        };
        match fs::symlink_metadata(shown) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Self {
                    path: shown.to_owned(),
                });
            }
            Err(e) => return Err(read_error(e)),
            Ok(_) => {}
        }
        let meta = match fs::metadata(shown) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(not_a_file("a symlink to nothing"));
            }
            Err(e) => return Err(read_error(e)),
            Ok(meta) => meta,
        };
        if !meta.is_file() {
            return Err(not_a_file(kind(&meta.file_type())));
        }
        let path = fs::canonicalize(shown).map_err(read_error)?;
        Ok(Self { path })
    }

    fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        }
    }

    /// The file's bytes and permissions, `None` if there is no file.
    fn read(&self, shown: &Path) -> Result<Option<(Vec<u8>, fs::Permissions)>, SetupError> {
        let read_error = |source| SetupError::Read {
            path: shown.to_owned(),
            source,
        };
        // The type again, just before opening: it may have changed since
        // `resolve`, and opening a FIFO blocks.
        match fs::metadata(&self.path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(read_error(e)),
            Ok(meta) if !meta.is_file() => {
                return Err(SetupError::NotAFile {
                    path: shown.to_owned(),
                    what: kind(&meta.file_type()).to_owned(),
                });
            }
            Ok(_) => {}
        }
        let file = fs::File::open(&self.path).map_err(read_error)?;
        let meta = file.metadata().map_err(read_error)?;
        if !meta.is_file() {
            return Err(SetupError::NotAFile {
                path: shown.to_owned(),
                what: kind(&meta.file_type()).to_owned(),
            });
        }
        let mut bytes = Vec::new();
        file.take(MAX_CONFIG_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(read_error)?;
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(SetupError::Unparsable {
                path: shown.to_owned(),
                format: "a config file",
                reason: format!("it is over {MAX_CONFIG_BYTES} bytes, too large for one"),
            });
        }
        Ok(Some((bytes, meta.permissions())))
    }
}

fn kind(file_type: &fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if file_type.is_block_device() || file_type.is_char_device() {
            return "a device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_dir() {
        return "a folder";
    }
    "not a regular file"
}

fn text_of<'a>(bytes: Option<&'a [u8]>, shown: &Path) -> Result<&'a str, SetupError> {
    match bytes {
        Some(bytes) => std::str::from_utf8(bytes).map_err(|e| SetupError::Unparsable {
            path: shown.to_owned(),
            format: "UTF-8 text",
            reason: e.to_string(),
        }),
        None => Ok(""),
    }
}

/// Reads and parses `path` without changing anything (a missing file is an
/// empty document): to refuse a bad file before asking for a key.
pub fn load(path: &Path, format: Format) -> Result<Document, SetupError> {
    let target = Target::resolve(path)?;
    let original = target.read(path)?;
    let text = text_of(original.as_ref().map(|(b, _)| b.as_slice()), path)?;
    Document::parse(text, format, path)
}

/// What [`update`] did.
pub enum Saved {
    /// `change` found nothing to do.
    Unchanged,
    /// Written; the old file's backup, if there was an old file.
    Written { backup: Option<PathBuf> },
}

/// Reads `path` under its lock, lets `change` edit it (it returns `false`
/// when there is nothing to do), and writes it back: the old file first to a
/// backup beside it, then the new text to a temporary file beside it,
/// renamed over it if the file still holds what was read. `private`: the
/// file holds the key, so it and its backup get no group or other access.
pub fn update(
    path: &Path,
    format: Format,
    private: bool,
    mut change: impl FnMut(&mut Document) -> Result<bool, SetupError>,
) -> Result<Saved, SetupError> {
    let write_error = |source| SetupError::Write {
        path: path.to_owned(),
        source,
    };
    let target = Target::resolve(path)?;
    let dir = target.dir();
    fs::create_dir_all(&dir).map_err(write_error)?;
    let _lock = lock(&target.path).map_err(|source| SetupError::Lock {
        path: path.to_owned(),
        source,
    })?;
    for _ in 0..MAX_ATTEMPTS {
        let original = target.read(path)?;
        let bytes = original.as_ref().map(|(b, _)| b.as_slice());
        let mut doc = Document::parse(text_of(bytes, path)?, format, path)?;
        if !change(&mut doc)? {
            return Ok(Saved::Unchanged);
        }
        let permissions = permissions(original.as_ref().map(|(_, p)| p), private);
        let new =
            temp_file(&dir, doc.text().as_bytes(), permissions.as_ref()).map_err(write_error)?;
        let backup = match bytes {
            Some(bytes) => Some(
                backup(&target.path, &dir, bytes, permissions.as_ref()).map_err(|source| {
                    SetupError::Backup {
                        path: path.to_owned(),
                        source,
                    }
                })?,
            ),
            None => None,
        };
        let now = target.read(path)?;
        if now.as_ref().map(|(b, _)| b.as_slice()) != bytes {
            // Someone else wrote it meanwhile: keep theirs, start again.
            if let Some(backup) = backup {
                let _ = fs::remove_file(backup);
            }
            continue;
        }
        new.persist(&target.path)
            .map_err(|e| write_error(e.error))?;
        return Ok(Saved::Written { backup });
    }
    Err(SetupError::KeptChanging {
        path: path.to_owned(),
    })
}

/// An exclusive lock on `<file>.lock` beside the file, held until dropped.
/// The lock file stays: removing it would let a waiting run lock a file
/// that is no longer the one others lock.
fn lock(target: &Path) -> io::Result<fs::File> {
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(target.with_file_name(name))?;
    file.lock()?;
    Ok(file)
}

/// The new file's permissions: the old file's, without group and other
/// access when it holds the key; `None` leaves tempfile's owner-only mode.
fn permissions(old: Option<&fs::Permissions>, private: bool) -> Option<fs::Permissions> {
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        let mode = old.map_or(0o600, |p| p.mode() & 0o700);
        return Some(fs::Permissions::from_mode(mode | 0o600));
    }
    let _ = private;
    old.cloned()
}

/// `value` as a document of `format`: the `--print` snippet.
pub fn render(
    format: Format,
    build: impl FnOnce(&mut Document) -> Result<(), SetupError>,
) -> Result<String, SetupError> {
    let mut doc = Document::parse("", format, Path::new("(printed)"))?;
    build(&mut doc)?;
    Ok(doc.text())
}

/// A temporary file beside the target holding `bytes`, flushed to disk.
/// tempfile creates it readable by the owner only.
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
    use serde_json::{Value, json};

    const STRICT: Format = Format::Json {
        comments: false,
        trailing_commas: false,
    };
    const JSONC: Format = Format::Json {
        comments: true,
        trailing_commas: true,
    };

    fn temp_dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"))
    }

    fn entry() -> CstInputValue {
        CstInputValue::Object(vec![(
            "command".into(),
            CstInputValue::String("/bin/h".into()),
        )])
    }

    fn merged_as(text: &str, format: Format, key: &str) -> Result<String, SetupError> {
        let dir = temp_dir();
        let path = dir.path().join("config");
        fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        update(&path, format, false, |doc| {
            doc.set_server(key, "hienergy", entry())?;
            Ok(true)
        })?;
        Ok(fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}")))
    }

    fn merged(text: &str, comments: bool) -> Result<String, SetupError> {
        let format = if comments { JSONC } else { STRICT };
        merged_as(text, format, "mcpServers")
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
    fn one_line_objects_keep_every_member_and_value() {
        let text = r#"{"x": {"n": 1.50, "t": true, "u": null, "s": "a\"\u00e9", "l": [1, {"k": []}]}, "mcpServers": {"a": {"command": "x"}, "b": {}}}"#;
        let before: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}"));
        let out = merged(text, false).unwrap_or_else(|e| panic!("{e}"));
        let mut after: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert_eq!(after["mcpServers"]["hienergy"]["command"], "/bin/h");
        if let Some(servers) = after["mcpServers"].as_object_mut() {
            servers.remove("hienergy");
        }
        assert_eq!(after, before);
        assert!(out.contains("1.50"), "{out}");
        let keys: Vec<&str> = out.match_indices("\"a\"").map(|(_, k)| k).collect();
        assert_eq!(keys.len(), 1, "{out}");
        // A one-line root without the servers key gets it too.
        let out = merged(r#"{"z": 1, "y": [2]}"#, false).unwrap_or_else(|e| panic!("{e}"));
        let value: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert_eq!(
            value,
            json!({"z": 1, "y": [2], "mcpServers": {"hienergy": {"command": "/bin/h"}}})
        );
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
        let out = merged("{\"mcpServers\": {\"a\": 1 /* keep */}}", true)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(out.contains("/* keep */"), "{out}");
    }

    #[test]
    fn comments_without_trailing_commas_refuse_a_trailing_comma() {
        let gemini = Format::Json {
            comments: true,
            trailing_commas: false,
        };
        assert!(merged_as("{\n // c\n \"a\": 1\n}", gemini, "mcpServers").is_ok());
        assert!(merged_as("{\"a\": 1,}", gemini, "mcpServers").is_err());
    }

    #[test]
    fn a_servers_key_that_is_not_an_object_is_refused() {
        let err = merged("{\"mcpServers\": []}", false).err();
        assert!(
            matches!(err, Some(SetupError::NotAnObject { .. })),
            "{err:?}"
        );
        let err = merged_as("mcp_servers = 1\n", Format::Toml, "mcp_servers").err();
        assert!(
            matches!(err, Some(SetupError::NotAnObject { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn duplicate_members_are_refused_by_name() {
        for (text, member) in [
            (r#"{"mcpServers": {"a": {}, "a": {}}}"#, "mcpServers.a"),
            (r#"{"mcpServers": {}, "mcpServers": {}}"#, "mcpServers"),
            (r#"{"x": [{"k": 1, "k": 2}]}"#, "x[0].k"),
        ] {
            match merged(text, false) {
                Err(SetupError::Duplicate { member: found, .. }) => assert_eq!(found, member),
                other => panic!("{text}: {:?}", other.map(|_| ())),
            }
        }
        let err = merged_as("[a]\nx = 1\nx = 2\n", Format::Toml, "mcp_servers").err();
        assert!(
            matches!(err, Some(SetupError::Unparsable { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn toml_keeps_comments_and_layout_and_gets_its_own_tables() {
        let text = "# mine\nmodel = \"o3\" # inline\n\n[mcp_servers.other]\ncommand = \"x\"\n\n[profiles.a]\nk = 1\n";
        let out = merged_as(text, Format::Toml, "mcp_servers").unwrap_or_else(|e| panic!("{e}"));
        // Beside its sibling servers, everything else as it was.
        let wanted = "# mine\nmodel = \"o3\" # inline\n\n[mcp_servers.other]\ncommand = \"x\"\n\n\
                      [mcp_servers.hienergy]\ncommand = \"/bin/h\"\n\n[profiles.a]\nk = 1\n";
        assert_eq!(out, wanted);
        assert!(!out.contains("[mcp_servers]\n"), "{out}");
    }

    #[test]
    fn a_toml_entry_replaced_stays_where_it_was() {
        let text = "[mcp_servers.hienergy]\ncommand = \"old\"\n\n[mcp_servers.hienergy.env]\nK = \"v\"\n\n[after]\nx = 1\n";
        let out = merged_as(text, Format::Toml, "mcp_servers").unwrap_or_else(|e| panic!("{e}"));
        let ours = out.find("/bin/h").unwrap_or(usize::MAX);
        let after = out.find("[after]").unwrap_or(0);
        assert!(ours < after, "{out}");
        assert!(!out.contains("old"), "{out}");
    }

    /// Another program writes the file between our read and our rename: its
    /// change is kept, and ours made on top of it.
    #[test]
    fn a_file_changed_underneath_is_read_again_not_overwritten() {
        let dir = temp_dir();
        let path = dir.path().join("config.json");
        fs::write(&path, "{}").unwrap_or_else(|e| panic!("{e}"));
        let mut calls = 0;
        let saved = update(&path, STRICT, false, |doc| {
            calls += 1;
            if calls == 1 {
                fs::write(&path, r#"{"theirs": true}"#).unwrap_or_else(|e| panic!("{e}"));
            }
            doc.set_server("mcpServers", "hienergy", entry())?;
            Ok(true)
        });
        assert!(matches!(saved, Ok(Saved::Written { .. })));
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert_eq!(value["theirs"], true, "{text}");
        assert_eq!(value["mcpServers"]["hienergy"]["command"], "/bin/h");
        assert_eq!(calls, 2);
    }
}
