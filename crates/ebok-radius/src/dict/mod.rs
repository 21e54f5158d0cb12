//! FreeRADIUS-format dictionaries (`radius-dict/`): attribute, vendor and value names, used
//! to name Vendor-Specific attributes and to render values. Unknown attributes stay raw.
//!
//! The shipped dictionaries are embedded in the binary ([`Dictionary::builtin`]); operators
//! can load their own tree ([`Dictionary::load`]) or add files on top of the shipped one
//! ([`Dictionary::load_with_builtin`]). Understood syntax: `ATTRIBUTE name code type
//! [flags]` (also the old `... type vendor` form), `VALUE attr name number`, `VENDOR name
//! id [format=t,l[,c]]`, `BEGIN-VENDOR`/`END-VENDOR`, `BEGIN-TLV`/`END-TLV` (members are
//! skipped), `$INCLUDE` and `$INCLUDE-` (optional), `#` comments.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Value type of an attribute as written in a dictionary (`string`, `integer`, `ipaddr`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrKind {
    String,
    Octets,
    Integer,
    Integer64,
    Short,
    Byte,
    Signed,
    Date,
    IpAddr,
    Ipv6Addr,
    Ipv6Prefix,
    Ipv4Prefix,
    IfId,
    Ether,
    /// Types we parse but do not render (tlv, abinary, …): shown as hex.
    Other,
}

impl AttrKind {
    /// The kind named by a dictionary type. A size suffix (`octets[16]`) is ignored; the
    /// FreeRADIUS 4 names (`uint32`, `ipv4addr`, …) are understood; anything else is
    /// [`AttrKind::Other`].
    fn from_dict_type(token: &str) -> AttrKind {
        let base = token.split_once('[').map_or(token, |(base, _)| base);
        match base.to_ascii_lowercase().as_str() {
            "string" => AttrKind::String,
            "octets" => AttrKind::Octets,
            "integer" | "uint32" => AttrKind::Integer,
            "integer64" | "uint64" => AttrKind::Integer64,
            "short" | "uint16" => AttrKind::Short,
            "byte" | "uint8" => AttrKind::Byte,
            "signed" | "int32" => AttrKind::Signed,
            "date" => AttrKind::Date,
            "ipaddr" | "ipv4addr" => AttrKind::IpAddr,
            "ipv6addr" => AttrKind::Ipv6Addr,
            "ipv6prefix" => AttrKind::Ipv6Prefix,
            "ipv4prefix" => AttrKind::Ipv4Prefix,
            "ifid" => AttrKind::IfId,
            "ether" => AttrKind::Ether,
            _ => AttrKind::Other,
        }
    }
}

/// One attribute definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeDef {
    pub name: String,
    pub code: u32,
    pub kind: AttrKind,
    /// `None` for standard attributes, the vendor id for vendor ones.
    pub vendor_id: Option<u32>,
    /// `has_tag`: the value may start with an RFC 2868 tag octet (0x01–0x1f).
    pub has_tag: bool,
    /// `encrypt=N`: 1 User-Password style, 2 Tunnel-Password (salted), 3 Ascend; 0 none.
    pub encrypt: u8,
}

/// One vendor definition (`VENDOR name id [format=t,l]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorDef {
    pub name: String,
    pub id: u32,
    /// Octets of the vendor attribute type field (1, 2 or 4; default 1).
    pub type_size: u8,
    /// Octets of the vendor attribute length field (0, 1 or 2; default 1).
    pub length_size: u8,
    /// `format=1,1,c`: a continuation octet follows the length field (WiMAX).
    pub continuation: bool,
}

/// Errors of loading a dictionary or of splitting a Vendor-Specific attribute with one.
#[derive(Debug, thiserror::Error)]
pub enum DictError {
    /// A dictionary line that cannot be used; `line` counts from 1.
    #[error("{file}:{line}: {reason}")]
    Parse {
        file: String,
        line: usize,
        reason: String,
    },
    /// A dictionary file that cannot be read.
    #[error("cannot read dictionary {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An `$INCLUDE` target the include callback does not know.
    #[error("dictionary file {0:?} not found")]
    NotFound(String),
    /// A Vendor-Specific attribute whose content does not follow its vendor's format.
    #[error("malformed Vendor-Specific attribute: {0}")]
    MalformedVsa(String),
}

mod value;
pub use value::*;

/// `$INCLUDE` nesting limit; also what stops an include cycle.
const MAX_INCLUDE_DEPTH: usize = 16;

/// The dictionaries of `radius-dict/`, embedded so the binary needs no data folder.
/// `dictionary` is the top level; the others are reached through its `$INCLUDE` lines.
const BUILTIN_FILES: &[(&str, &str)] = &[
    (
        "dictionary",
        include_str!("../../../../radius-dict/dictionary"),
    ),
    (
        "dictionary.rfc2865",
        include_str!("../../../../radius-dict/dictionary.rfc2865"),
    ),
    (
        "dictionary.rfc2866",
        include_str!("../../../../radius-dict/dictionary.rfc2866"),
    ),
    (
        "dictionary.rfc2867",
        include_str!("../../../../radius-dict/dictionary.rfc2867"),
    ),
    (
        "dictionary.rfc2868",
        include_str!("../../../../radius-dict/dictionary.rfc2868"),
    ),
    (
        "dictionary.rfc2869",
        include_str!("../../../../radius-dict/dictionary.rfc2869"),
    ),
    (
        "dictionary.rfc3162",
        include_str!("../../../../radius-dict/dictionary.rfc3162"),
    ),
    (
        "dictionary.rfc4818",
        include_str!("../../../../radius-dict/dictionary.rfc4818"),
    ),
    (
        "dictionary.rfc5176",
        include_str!("../../../../radius-dict/dictionary.rfc5176"),
    ),
    (
        "dictionary.rfc6911",
        include_str!("../../../../radius-dict/dictionary.rfc6911"),
    ),
    (
        "dictionary.dslforum",
        include_str!("../../../../radius-dict/dictionary.dslforum"),
    ),
    (
        "dictionary.cisco",
        include_str!("../../../../radius-dict/dictionary.cisco"),
    ),
    (
        "dictionary.erx",
        include_str!("../../../../radius-dict/dictionary.erx"),
    ),
    (
        "dictionary.huawei",
        include_str!("../../../../radius-dict/dictionary.huawei"),
    ),
    (
        "dictionary.juniper",
        include_str!("../../../../radius-dict/dictionary.juniper"),
    ),
    (
        "dictionary.mikrotik",
        include_str!("../../../../radius-dict/dictionary.mikrotik"),
    ),
];

fn builtin_file(name: &str) -> Option<&'static str> {
    BUILTIN_FILES
        .iter()
        .find(|(file, _)| *file == name)
        .map(|(_, text)| *text)
}

/// Key of an attribute: vendor id (`None` = standard) and attribute number.
type AttrKey = (Option<u32>, u32);

/// Attribute, vendor and value names, as read from FreeRADIUS-format dictionary files.
/// Name lookups ignore ASCII case.
#[derive(Debug, Clone, Default)]
pub struct Dictionary {
    attributes: HashMap<AttrKey, AttributeDef>,
    attribute_names: HashMap<String, AttrKey>,
    vendors: HashMap<u32, VendorDef>,
    vendor_names: HashMap<String, u32>,
    value_names: HashMap<(AttrKey, u32), String>,
    value_numbers: HashMap<(AttrKey, String), u32>,
}

impl Dictionary {
    /// The dictionaries shipped in `radius-dict/`, parsed once on first use.
    pub fn builtin() -> &'static Dictionary {
        static BUILTIN: OnceLock<Dictionary> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            let mut builder = Builder::default();
            builder
                .add_builtin()
                .and_then(|()| builder.finish())
                .expect("the embedded radius-dict/ dictionaries parse (checked by unit tests)")
        })
    }

    /// Reads a top-level dictionary file and the files it `$INCLUDE`s, each include path
    /// taken relative to the file that names it.
    pub fn load(path: &Path) -> Result<Dictionary, DictError> {
        let mut builder = Builder::default();
        builder.add_path(path)?;
        builder.finish()
    }

    /// The shipped dictionaries plus an operator's own file (and its includes), read after
    /// them so it may use the shipped vendors and attributes.
    pub fn load_with_builtin(path: &Path) -> Result<Dictionary, DictError> {
        let mut builder = Builder::default();
        builder.add_builtin()?;
        builder.add_path(path)?;
        builder.finish()
    }

    /// Parses dictionary text named `name` (used in error messages); `include` returns the
    /// text of each `$INCLUDE` target, given exactly as written.
    pub fn parse_str(
        name: &str,
        text: &str,
        include: &dyn Fn(&str) -> Result<String, DictError>,
    ) -> Result<Dictionary, DictError> {
        let mut builder = Builder::default();
        let mut fetch =
            |_including: &str, target: &str| include(target).map(|text| (target.to_owned(), text));
        builder.parse_file(name, text, &mut fetch, 0)?;
        builder.finish()
    }

    /// A standard (non-vendor) attribute by number.
    pub fn attribute(&self, code: u32) -> Option<&AttributeDef> {
        self.attributes.get(&(None, code))
    }

    /// A standard or vendor attribute by name, ignoring ASCII case.
    pub(crate) fn attribute_by_name(&self, name: &str) -> Option<&AttributeDef> {
        self.attribute_names
            .get(&name.to_ascii_lowercase())
            .and_then(|key| self.attributes.get(key))
    }

    /// A vendor by its IANA enterprise number.
    pub fn vendor(&self, id: u32) -> Option<&VendorDef> {
        self.vendors.get(&id)
    }

    /// A vendor by name, ignoring ASCII case.
    pub fn vendor_by_name(&self, name: &str) -> Option<&VendorDef> {
        self.vendor_names
            .get(&name.to_ascii_lowercase())
            .and_then(|id| self.vendors.get(id))
    }

    /// A vendor attribute by vendor id and sub-attribute number.
    pub(crate) fn vendor_attribute(&self, vendor_id: u32, code: u32) -> Option<&AttributeDef> {
        self.attributes.get(&(Some(vendor_id), code))
    }

    /// The `VALUE` name of `value` for an attribute (`vendor_id` `None` = standard), e.g.
    /// `value_name(None, 40, 3)` is `Some("Interim-Update")`.
    pub fn value_name(&self, vendor_id: Option<u32>, attr_code: u32, value: u32) -> Option<&str> {
        self.value_names
            .get(&((vendor_id, attr_code), value))
            .map(String::as_str)
    }

    /// The number of a `VALUE` name for an attribute, ignoring ASCII case.
    pub(crate) fn value_number(
        &self,
        vendor_id: Option<u32>,
        attr_code: u32,
        name: &str,
    ) -> Option<u32> {
        self.value_numbers
            .get(&((vendor_id, attr_code), name.to_ascii_lowercase()))
            .copied()
    }
}

/// Returns `(name, text)` of an `$INCLUDE` target, given the name of the including file.
type Fetch<'a> = dyn FnMut(&str, &str) -> Result<(String, String), DictError> + 'a;

/// A `VALUE` line, resolved once all files are read so it may precede its `ATTRIBUTE`.
struct PendingValue {
    file: String,
    line: usize,
    attribute: String,
    name: String,
    number: u32,
}

/// Accumulates one or more dictionary trees into a [`Dictionary`].
#[derive(Default)]
struct Builder {
    dict: Dictionary,
    pending: Vec<PendingValue>,
    /// Lower-case names of attributes read but not modelled (TLV members, dotted numbers);
    /// their `VALUE` lines are ignored rather than reported as unknown.
    skipped: HashSet<String>,
}

impl Builder {
    fn add_builtin(&mut self) -> Result<(), DictError> {
        let mut fetch = |_including: &str, target: &str| {
            builtin_file(target)
                .map(|text| (target.to_owned(), text.to_owned()))
                .ok_or_else(|| DictError::NotFound(target.to_owned()))
        };
        let top = builtin_file("dictionary").unwrap_or_default();
        self.parse_file("dictionary", top, &mut fetch, 0)
    }

    fn add_path(&mut self, path: &Path) -> Result<(), DictError> {
        let text = read_file(path)?;
        let mut fetch = |including: &str, target: &str| {
            let target = Path::new(target);
            let full = if target.is_absolute() {
                target.to_path_buf()
            } else {
                Path::new(including)
                    .parent()
                    .unwrap_or_else(|| Path::new(""))
                    .join(target)
            };
            let text = read_file(&full)?;
            Ok((full.display().to_string(), text))
        };
        self.parse_file(&path.display().to_string(), &text, &mut fetch, 0)
    }

    fn parse_file(
        &mut self,
        file: &str,
        text: &str,
        fetch: &mut Fetch<'_>,
        depth: usize,
    ) -> Result<(), DictError> {
        // BEGIN-VENDOR and BEGIN-TLV blocks must close in the file that opens them.
        let mut vendor_block: Option<(u32, String)> = None;
        let mut tlv_blocks: Vec<String> = Vec::new();
        let mut last_line = 0;
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            last_line = line;
            let content = raw.split_once('#').map_or(raw, |(before, _)| before);
            let tokens: Vec<&str> = content.split_whitespace().collect();
            let Some((&keyword, args)) = tokens.split_first() else {
                continue;
            };
            let fail = |reason: String| DictError::Parse {
                file: file.to_owned(),
                line,
                reason,
            };
            match keyword {
                "ATTRIBUTE" => {
                    let vendor = vendor_block.as_ref().map(|(id, _)| *id);
                    self.attribute(args, vendor, !tlv_blocks.is_empty())
                        .map_err(fail)?;
                }
                "VALUE" => self.value(args, file, line).map_err(fail)?,
                "VENDOR" => self.vendor(args).map_err(fail)?,
                "BEGIN-VENDOR" => {
                    let [name] = args else {
                        return Err(fail("BEGIN-VENDOR takes exactly one vendor name".into()));
                    };
                    if let Some((_, open)) = &vendor_block {
                        return Err(fail(format!(
                            "BEGIN-VENDOR {name} inside BEGIN-VENDOR {open}"
                        )));
                    }
                    let id = self
                        .dict
                        .vendor_names
                        .get(&name.to_ascii_lowercase())
                        .copied()
                        .ok_or_else(|| fail(format!("BEGIN-VENDOR for unknown vendor {name}")))?;
                    vendor_block = Some((id, (*name).to_owned()));
                }
                "END-VENDOR" => {
                    let [name] = args else {
                        return Err(fail("END-VENDOR takes exactly one vendor name".into()));
                    };
                    match &vendor_block {
                        Some((_, open)) if open.eq_ignore_ascii_case(name) => vendor_block = None,
                        Some((_, open)) => {
                            return Err(fail(format!(
                                "END-VENDOR {name} closes BEGIN-VENDOR {open}"
                            )));
                        }
                        None => {
                            return Err(fail(format!("END-VENDOR {name} without BEGIN-VENDOR")))
                        }
                    }
                }
                "BEGIN-TLV" => {
                    let [name] = args else {
                        return Err(fail("BEGIN-TLV takes exactly one attribute name".into()));
                    };
                    tlv_blocks.push((*name).to_owned());
                }
                "END-TLV" => {
                    let [name] = args else {
                        return Err(fail("END-TLV takes exactly one attribute name".into()));
                    };
                    match tlv_blocks.pop() {
                        Some(open) if open.eq_ignore_ascii_case(name) => {}
                        Some(open) => {
                            return Err(fail(format!("END-TLV {name} closes BEGIN-TLV {open}")));
                        }
                        None => return Err(fail(format!("END-TLV {name} without BEGIN-TLV"))),
                    }
                }
                "$INCLUDE" | "$INCLUDE-" => {
                    let [target] = args else {
                        return Err(fail(format!("{keyword} takes exactly one file name")));
                    };
                    if depth >= MAX_INCLUDE_DEPTH {
                        return Err(fail(format!(
                            "$INCLUDE nested deeper than {MAX_INCLUDE_DEPTH} files (an include cycle?)"
                        )));
                    }
                    match fetch(file, target) {
                        Ok((name, included)) => {
                            self.parse_file(&name, &included, fetch, depth + 1)?
                        }
                        // `$INCLUDE-` names a file that may be absent.
                        Err(_) if keyword == "$INCLUDE-" => {}
                        Err(err) => return Err(fail(format!("cannot include {target}: {err}"))),
                    }
                }
                other => return Err(fail(format!("unknown keyword {other:?}"))),
            }
        }
        let unclosed = |reason: String| DictError::Parse {
            file: file.to_owned(),
            line: last_line,
            reason,
        };
        if let Some((_, name)) = vendor_block {
            return Err(unclosed(format!("BEGIN-VENDOR {name} has no END-VENDOR")));
        }
        if let Some(name) = tlv_blocks.pop() {
            return Err(unclosed(format!("BEGIN-TLV {name} has no END-TLV")));
        }
        Ok(())
    }

    /// `ATTRIBUTE name code type [flags] [vendor]`.
    fn attribute(
        &mut self,
        args: &[&str],
        block_vendor: Option<u32>,
        in_tlv: bool,
    ) -> Result<(), String> {
        let [name, code, kind, rest @ ..] = args else {
            return Err("ATTRIBUTE needs a name, a number and a type".into());
        };
        if in_tlv || code.contains('.') {
            // TLV members and dotted (extended-space) numbers have no place in our flat
            // (vendor, number) model; their values stay raw.
            self.skipped.insert(name.to_ascii_lowercase());
            return Ok(());
        }
        let code = parse_number(code).ok_or_else(|| format!("bad attribute number {code:?}"))?;
        let mut vendor_id = block_vendor;
        let mut has_tag = false;
        let mut encrypt = 0;
        for token in rest {
            if is_flag_list(token) {
                for flag in token.split(',') {
                    match flag.split_once('=') {
                        None if flag == "has_tag" => has_tag = true,
                        None if KNOWN_FLAGS.contains(&flag) => {}
                        None => return Err(format!("unknown attribute flag {flag:?}")),
                        Some(("encrypt", method)) => {
                            encrypt = method
                                .parse()
                                .ok()
                                .filter(|method| *method <= 3)
                                .ok_or_else(|| format!("bad encrypt method {method:?}"))?;
                        }
                        // Other key=value flags (clone=, ref=, enum=, …) do not change how
                        // values are split or shown.
                        Some(_) => {}
                    }
                }
            } else {
                // The old form names the vendor after the type.
                let id = self
                    .dict
                    .vendor_names
                    .get(&token.to_ascii_lowercase())
                    .copied()
                    .ok_or_else(|| format!("unknown attribute flag or vendor {token:?}"))?;
                vendor_id = Some(id);
            }
        }
        match vendor_id {
            None if !(1..=255).contains(&code) => {
                return Err(format!("standard attribute number {code} is not in 1-255"));
            }
            Some(id) => {
                let type_size = self
                    .dict
                    .vendors
                    .get(&id)
                    .map_or(1, |vendor| vendor.type_size);
                let max = match type_size {
                    1 => 0xff,
                    2 => 0xffff,
                    _ => u32::MAX,
                };
                if code > max {
                    return Err(format!(
                        "vendor attribute number {code} does not fit a {type_size}-octet type field"
                    ));
                }
            }
            None => {}
        }
        let key = (vendor_id, code);
        let def = AttributeDef {
            name: (*name).to_owned(),
            code,
            kind: AttrKind::from_dict_type(kind),
            vendor_id,
            has_tag,
            encrypt,
        };
        let lower = name.to_ascii_lowercase();
        if let Some(old) = self.dict.attributes.insert(key, def) {
            // A redefinition under a new name retires the old name.
            let old_lower = old.name.to_ascii_lowercase();
            if old_lower != lower && self.dict.attribute_names.get(&old_lower) == Some(&key) {
                self.dict.attribute_names.remove(&old_lower);
            }
        }
        self.dict.attribute_names.insert(lower, key);
        Ok(())
    }

    /// `VALUE attribute-name value-name number`.
    fn value(&mut self, args: &[&str], file: &str, line: usize) -> Result<(), String> {
        let [attribute, name, number] = args else {
            return Err("VALUE needs an attribute name, a value name and a number".into());
        };
        let number = parse_number(number).ok_or_else(|| format!("bad value number {number:?}"))?;
        self.pending.push(PendingValue {
            file: file.to_owned(),
            line,
            attribute: (*attribute).to_owned(),
            name: (*name).to_owned(),
            number,
        });
        Ok(())
    }

    /// `VENDOR name id [format=t,l[,c]]`.
    fn vendor(&mut self, args: &[&str]) -> Result<(), String> {
        let [name, id, options @ ..] = args else {
            return Err("VENDOR needs a name and a number".into());
        };
        let id = parse_number(id).ok_or_else(|| format!("bad vendor number {id:?}"))?;
        let (mut type_size, mut length_size, mut continuation) = (1, 1, false);
        for option in options {
            let Some(format) = option.strip_prefix("format=") else {
                return Err(format!("unknown VENDOR option {option:?}"));
            };
            let parts: Vec<&str> = format.split(',').collect();
            let (t, l, c) = match parts.as_slice() {
                [t, l] => (*t, *l, false),
                [t, l, "c"] => (*t, *l, true),
                _ => return Err(format!("bad vendor format {format:?}")),
            };
            type_size = match t {
                "1" => 1,
                "2" => 2,
                "4" => 4,
                _ => return Err(format!("vendor type field of {t} octets (1, 2 or 4)")),
            };
            length_size = match l {
                "0" => 0,
                "1" => 1,
                "2" => 2,
                _ => return Err(format!("vendor length field of {l} octets (0, 1 or 2)")),
            };
            if c && (type_size, length_size) != (1, 1) {
                return Err("a continuation octet needs format=1,1,c".into());
            }
            continuation = c;
        }
        self.dict.vendor_names.insert(name.to_ascii_lowercase(), id);
        self.dict.vendors.insert(
            id,
            VendorDef {
                name: (*name).to_owned(),
                id,
                type_size,
                length_size,
                continuation,
            },
        );
        Ok(())
    }

    fn finish(&mut self) -> Result<Dictionary, DictError> {
        for pending in std::mem::take(&mut self.pending) {
            let attribute = pending.attribute.to_ascii_lowercase();
            let Some(&key) = self.dict.attribute_names.get(&attribute) else {
                if self.skipped.contains(&attribute) {
                    continue;
                }
                return Err(DictError::Parse {
                    file: pending.file,
                    line: pending.line,
                    reason: format!("VALUE for unknown attribute {}", pending.attribute),
                });
            };
            // The first name given to a number is its display name; later ones are aliases.
            self.dict
                .value_numbers
                .insert((key, pending.name.to_ascii_lowercase()), pending.number);
            self.dict
                .value_names
                .entry((key, pending.number))
                .or_insert(pending.name);
        }
        Ok(std::mem::take(&mut self.dict))
    }
}

/// Flag words that FreeRADIUS dictionaries use and that do not matter here.
const KNOWN_FLAGS: &[&str] = &[
    "has_tag", "array", "concat", "virtual", "internal", "long", "secret",
];

/// Whether an `ATTRIBUTE` token after the type is a flag list rather than a vendor name.
fn is_flag_list(token: &str) -> bool {
    token.contains(['=', ',']) || KNOWN_FLAGS.contains(&token)
}

/// A decimal or `0x` hexadecimal number.
fn parse_number(token: &str) -> Option<u32> {
    match token
        .strip_prefix("0x")
        .or_else(|| token.strip_prefix("0X"))
    {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => token.parse().ok(),
    }
}

fn read_file(path: &Path) -> Result<String, DictError> {
    std::fs::read_to_string(path).map_err(|source| DictError::Io {
        path: path.to_path_buf(),
        source,
    })
}

impl Dictionary {
    /// One attribute named as in the dictionaries (`Filter-Id`, `Mikrotik-Rate-Limit`),
    /// with its value as text, as wire bytes: type, length, value — wrapped in a
    /// Vendor-Specific (26) attribute with the vendor's type and length sizes for vendor
    /// attributes.
    pub fn encode_attribute(&self, name: &str, text: &str) -> Result<Vec<u8>, EncodeError> {
        let def = self
            .attribute_by_name(name)
            .ok_or_else(|| EncodeError::UnknownAttribute(name.to_owned()))?;
        if def.encrypt != 0 || def.has_tag {
            return Err(EncodeError::Unsupported(def.name.clone()));
        }
        let value = parse_value(def.kind, text, |v| {
            self.value_number(def.vendor_id, def.code, v)
        })
        .ok_or_else(|| EncodeError::BadValue {
            name: def.name.clone(),
            value: text.to_owned(),
            kind: def.kind.label(),
        })?;
        let too_long = || EncodeError::TooLong(def.name.clone());
        let Some(vendor_id) = def.vendor_id else {
            let code = u8::try_from(def.code).map_err(|_| too_long())?;
            let len = u8::try_from(value.len() + 2).map_err(|_| too_long())?;
            let mut out = vec![code, len];
            out.extend_from_slice(&value);
            return Ok(out);
        };
        let (type_size, length_size, continuation) =
            self.vendor(vendor_id).map_or((1, 1, false), |v| {
                (
                    usize::from(v.type_size),
                    usize::from(v.length_size),
                    v.continuation,
                )
            });
        let mut sub = Vec::new();
        sub.extend_from_slice(&def.code.to_be_bytes()[4 - type_size..]);
        let sub_len = type_size + length_size + usize::from(continuation) + value.len();
        if length_size > 0 {
            let len = u32::try_from(sub_len).map_err(|_| too_long())?;
            if length_size == 1 && len > 255 {
                return Err(too_long());
            }
            sub.extend_from_slice(&len.to_be_bytes()[4 - length_size..]);
        }
        if continuation {
            sub.push(0);
        }
        sub.extend_from_slice(&value);
        let len = u8::try_from(sub.len() + 6).map_err(|_| too_long())?;
        let mut out = vec![26, len];
        out.extend_from_slice(&vendor_id.to_be_bytes());
        out.extend_from_slice(&sub);
        Ok(out)
    }
}

/// Big-endian unsigned integer of 1–4 octets.
fn be_uint(octets: &[u8]) -> u32 {
    octets
        .iter()
        .fold(0, |acc, octet| (acc << 8) | u32::from(*octet))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(files: &[(&str, &str)]) -> Result<Dictionary, DictError> {
        let (name, text) = files[0];
        let include = |target: &str| {
            files
                .iter()
                .find(|(file, _)| *file == target)
                .map(|(_, text)| (*text).to_owned())
                .ok_or_else(|| DictError::NotFound(target.to_owned()))
        };
        Dictionary::parse_str(name, text, &include)
    }

    fn parse_error(files: &[(&str, &str)]) -> (String, usize, String) {
        match parse(files) {
            Err(DictError::Parse { file, line, reason }) => (file, line, reason),
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    // --- the shipped dictionaries ---

    #[test]
    fn builtin_includes_every_embedded_file() {
        let top = builtin_file("dictionary").unwrap();
        for (name, _) in &BUILTIN_FILES[1..] {
            assert!(
                top.lines()
                    .any(|line| line.trim() == format!("$INCLUDE {name}")),
                "{name} is embedded but not included"
            );
        }
    }

    #[test]
    fn builtin_parses_and_knows_accounting_values() {
        let dict = Dictionary::builtin();
        let status = dict.attribute(40).unwrap();
        assert_eq!(status.name, "Acct-Status-Type");
        assert_eq!(status.kind, AttrKind::Integer);
        for (number, name) in [
            (1, "Start"),
            (2, "Stop"),
            (3, "Interim-Update"),
            (7, "Accounting-On"),
            (8, "Accounting-Off"),
            (9, "Tunnel-Start"),
        ] {
            assert_eq!(dict.value_name(None, 40, number), Some(name));
            assert_eq!(
                dict.value_number(None, 40, &name.to_uppercase()),
                Some(number)
            );
        }
        assert_eq!(dict.value_name(None, 40, 4), None);
    }

    #[test]
    fn builtin_knows_all_rfc2866_terminate_causes() {
        let dict = Dictionary::builtin();
        let names = [
            "User-Request",
            "Lost-Carrier",
            "Lost-Service",
            "Idle-Timeout",
            "Session-Timeout",
            "Admin-Reset",
            "Admin-Reboot",
            "Port-Error",
            "NAS-Error",
            "NAS-Request",
            "NAS-Reboot",
            "Port-Unneeded",
            "Port-Preempted",
            "Port-Suspended",
            "Service-Unavailable",
            "Callback",
            "User-Error",
            "Host-Request",
        ];
        for (index, name) in names.iter().enumerate() {
            assert_eq!(dict.value_name(None, 49, index as u32 + 1), Some(*name));
        }
        assert_eq!(dict.value_name(None, 49, 19), Some("Supplicant-Restart"));
        assert_eq!(
            dict.value_name(None, 49, 22),
            Some("Port-Administratively-Disabled")
        );
    }

    #[test]
    fn builtin_standard_attribute_types() {
        let dict = Dictionary::builtin();
        let expect = [
            (1, "User-Name", AttrKind::String),
            (4, "NAS-IP-Address", AttrKind::IpAddr),
            (8, "Framed-IP-Address", AttrKind::IpAddr),
            (25, "Class", AttrKind::Octets),
            (26, "Vendor-Specific", AttrKind::Other),
            (31, "Calling-Station-Id", AttrKind::String),
            (52, "Acct-Input-Gigawords", AttrKind::Integer),
            (55, "Event-Timestamp", AttrKind::Date),
            (70, "ARAP-Password", AttrKind::Octets),
            (80, "Message-Authenticator", AttrKind::Octets),
            (87, "NAS-Port-Id", AttrKind::String),
            (95, "NAS-IPv6-Address", AttrKind::Ipv6Addr),
            (96, "Framed-Interface-Id", AttrKind::IfId),
            (97, "Framed-IPv6-Prefix", AttrKind::Ipv6Prefix),
            (101, "Error-Cause", AttrKind::Integer),
            (123, "Delegated-IPv6-Prefix", AttrKind::Ipv6Prefix),
            (168, "Framed-IPv6-Address", AttrKind::Ipv6Addr),
            (171, "Delegated-IPv6-Prefix-Pool", AttrKind::String),
        ];
        for (code, name, kind) in expect {
            let def = dict
                .attribute(code)
                .unwrap_or_else(|| panic!("attribute {code}"));
            assert_eq!(
                (def.name.as_str(), def.kind, def.vendor_id),
                (name, kind, None)
            );
            assert_eq!(dict.attribute_by_name(&name.to_lowercase()), Some(def));
        }
        assert_eq!(dict.value_name(None, 61, 5), Some("Virtual"));
        assert_eq!(dict.value_name(None, 61, 15), Some("Ethernet"));
        assert_eq!(dict.value_name(None, 61, 33), Some("PPPoEoVLAN"));
        assert_eq!(dict.value_name(None, 6, 2), Some("Framed-User"));
        assert_eq!(dict.value_name(None, 6, 17), Some("Authorize-Only"));
        assert_eq!(
            dict.value_name(None, 101, 503),
            Some("Session-Context-Not-Found")
        );
        let password = dict.attribute_by_name("Tunnel-Password").unwrap();
        assert!(password.has_tag);
        assert_eq!(password.encrypt, 2);
        assert_eq!(dict.attribute(2).unwrap().encrypt, 1);
    }

    #[test]
    fn builtin_vendor_attributes() {
        let dict = Dictionary::builtin();
        let mikrotik = dict.vendor(14988).unwrap();
        assert_eq!(
            (
                mikrotik.name.as_str(),
                mikrotik.type_size,
                mikrotik.length_size
            ),
            ("Mikrotik", 1, 1)
        );
        let rate = dict.vendor_attribute(14988, 8).unwrap();
        assert_eq!(
            (rate.name.as_str(), rate.kind, rate.vendor_id),
            ("Mikrotik-Rate-Limit", AttrKind::String, Some(14988))
        );
        assert_eq!(dict.attribute_by_name("MIKROTIK-RATE-LIMIT"), Some(rate));
        assert_eq!(
            dict.vendor_attribute(14988, 19).unwrap().name,
            "Mikrotik-Address-List"
        );
        assert_eq!(
            dict.vendor_attribute(14988, 30).unwrap().name,
            "Mikrotik-Switching-Filter"
        );
        assert_eq!(dict.value_name(Some(14988), 27, 1), Some("802.1ad"));

        let avpair = dict.vendor_attribute(9, 1).unwrap();
        assert_eq!(
            (avpair.name.as_str(), avpair.kind),
            ("Cisco-AVPair", AttrKind::String)
        );
        assert_eq!(
            dict.vendor_attribute(9, 195).unwrap().name,
            "Cisco-Disconnect-Cause"
        );
        assert_eq!(dict.value_name(Some(9), 195, 100), Some("Session-Timeout"));

        assert_eq!(dict.vendor(2011).unwrap().name, "Huawei");
        assert_eq!(
            dict.vendor_attribute(2011, 2).unwrap().name,
            "Huawei-Input-Average-Rate"
        );
        assert_eq!(
            dict.vendor_attribute(2011, 6).unwrap().name,
            "Huawei-Output-Peak-Rate"
        );
        assert_eq!(
            dict.vendor_attribute(2011, 138).unwrap().name,
            "Huawei-Domain-Name"
        );

        assert_eq!(dict.vendor_by_name("erx").unwrap().id, 4874);
        let mac = dict.vendor_attribute(4874, 56).unwrap();
        assert_eq!(
            (mac.name.as_str(), mac.kind),
            ("ERX-Dhcp-Mac-Addr", AttrKind::String)
        );
        assert_eq!(
            dict.vendor_attribute(4874, 1).unwrap().name,
            "ERX-Virtual-Router-Name"
        );
        assert_eq!(
            dict.vendor_attribute(4874, 47).unwrap().kind,
            AttrKind::Ipv6Addr
        );
        assert_eq!(
            dict.vendor_attribute(4874, 161).unwrap().name,
            "ERX-IPv6-Delegated-Pool-Name"
        );
        assert!(dict.vendor_attribute(4874, 65).unwrap().has_tag);

        assert_eq!(
            dict.vendor_attribute(2636, 1).unwrap().name,
            "Juniper-Local-User-Name"
        );
        assert_eq!(
            dict.vendor_attribute(3561, 1).unwrap().name,
            "ADSL-Agent-Circuit-Id"
        );
        assert_eq!(
            dict.vendor_attribute(3561, 2).unwrap().name,
            "ADSL-Agent-Remote-Id"
        );
        assert!(dict.vendor_attribute(14988, 200).is_none());
        assert!(dict.vendor(12345).is_none());
    }

    // --- parsing ---

    #[test]
    fn parses_flags_formats_hex_numbers_and_the_old_vendor_form() {
        let dict = parse(&[(
            "top",
            "VENDOR Acme 0x1e240 format=2,2 # 123456\n\
             VENDOR Old 77\n\
             ATTRIBUTE Plain 1 string\n\
             ATTRIBUTE Tagged 2 integer has_tag,encrypt=2\n\
             ATTRIBUTE Listed 3 ipaddr array\n\
             ATTRIBUTE Sized 4 octets[16]\n\
             ATTRIBUTE Odd 5 combo-ip clone=Plain\n\
             ATTRIBUTE Old-Thing 7 integer Old\n\
             BEGIN-VENDOR Acme\n\
             ATTRIBUTE Acme-Big 0x1234 uint32\n\
             BEGIN-TLV Acme-Big\n\
             ATTRIBUTE Acme-Member 1.1 string\n\
             END-TLV Acme-Big\n\
             ATTRIBUTE Acme-Nested 4660.2 string\n\
             END-VENDOR Acme\n\
             VALUE Acme-Big Fast 0x10\n\
             VALUE Acme-Member Ignored 1\n\
             VALUE Tagged First 1\n\
             VALUE Tagged Alias 1\n",
        )])
        .unwrap();
        let acme = dict.vendor(123456).unwrap();
        assert_eq!(
            (acme.type_size, acme.length_size, acme.continuation),
            (2, 2, false)
        );
        let tagged = dict.attribute(2).unwrap();
        assert!(tagged.has_tag);
        assert_eq!(tagged.encrypt, 2);
        assert_eq!(dict.attribute(3).unwrap().kind, AttrKind::IpAddr);
        assert_eq!(dict.attribute(4).unwrap().kind, AttrKind::Octets);
        assert_eq!(dict.attribute(5).unwrap().kind, AttrKind::Other);
        assert_eq!(dict.vendor_attribute(77, 7).unwrap().name, "Old-Thing");
        let big = dict.vendor_attribute(123456, 0x1234).unwrap();
        assert_eq!(
            (big.name.as_str(), big.kind),
            ("Acme-Big", AttrKind::Integer)
        );
        assert_eq!(dict.value_name(Some(123456), 0x1234, 16), Some("Fast"));
        assert!(dict.attribute_by_name("Acme-Member").is_none());
        assert!(dict.attribute_by_name("Acme-Nested").is_none());
        assert_eq!(dict.value_name(None, 2, 1), Some("First"));
        assert_eq!(dict.value_number(None, 2, "alias"), Some(1));
    }

    #[test]
    fn includes_resolve_and_optional_includes_may_be_missing() {
        let dict = parse(&[
            ("top", "$INCLUDE one\n$INCLUDE- absent\n"),
            ("one", "ATTRIBUTE Late 9 integer\n$INCLUDE two\n"),
            ("two", "VALUE Late Nine 9\n"),
        ])
        .unwrap();
        assert_eq!(dict.value_name(None, 9, 9), Some("Nine"));
    }

    #[test]
    fn parse_errors_name_file_and_line() {
        // (files, file of the error, its line, part of its reason)
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, usize, &'a str);
        let cases: &[Case<'_>] = &[
            (
                &[("top", "# c\n\nATTRIBUTE Foo abc string\n")],
                "top",
                3,
                "bad attribute number",
            ),
            (
                &[
                    ("top", "$INCLUDE extra\n"),
                    ("extra", "ATTRIBUTE A 1 string\nFROB x\n"),
                ],
                "extra",
                2,
                "unknown keyword",
            ),
            (
                &[("top", "ATTRIBUTE A 1 string\n\nVALUE B X 1\n")],
                "top",
                3,
                "unknown attribute B",
            ),
            (
                &[("top", "ATTRIBUTE A 256 string\n")],
                "top",
                1,
                "not in 1-255",
            ),
            (
                &[("top", "ATTRIBUTE A 1 string bogus\n")],
                "top",
                1,
                "unknown attribute flag or vendor",
            ),
            (
                &[("top", "ATTRIBUTE A 1 string encrypt=9\n")],
                "top",
                1,
                "bad encrypt method",
            ),
            (
                &[("top", "ATTRIBUTE A 1\n")],
                "top",
                1,
                "needs a name, a number and a type",
            ),
            (
                &[(
                    "top",
                    "VENDOR V 5\nBEGIN-VENDOR V\nATTRIBUTE V-A 300 string\nEND-VENDOR V\n",
                )],
                "top",
                3,
                "1-octet type field",
            ),
            (
                &[("top", "VENDOR V 5 format=3,1\n")],
                "top",
                1,
                "vendor type field",
            ),
            (
                &[("top", "VENDOR V 5 format=2,1,c\n")],
                "top",
                1,
                "continuation",
            ),
            (
                &[("top", "BEGIN-VENDOR Nobody\n")],
                "top",
                1,
                "unknown vendor",
            ),
            (
                &[(
                    "top",
                    "VENDOR V 5\nVENDOR W 6\nBEGIN-VENDOR V\nEND-VENDOR W\n",
                )],
                "top",
                4,
                "closes BEGIN-VENDOR V",
            ),
            (
                &[(
                    "top",
                    "VENDOR V 5\nBEGIN-VENDOR V\nATTRIBUTE V-A 1 string\n",
                )],
                "top",
                3,
                "no END-VENDOR",
            ),
            (&[("top", "END-TLV X\n")], "top", 1, "without BEGIN-TLV"),
            (
                &[("top", "ATTRIBUTE A 1 string\n$INCLUDE missing\n")],
                "top",
                2,
                "cannot include missing",
            ),
            (
                &[("top", "$INCLUDE top\n")],
                "top",
                1,
                "nested deeper than 16",
            ),
        ];
        for (files, file, line, reason) in cases {
            let (got_file, got_line, got_reason) = parse_error(files);
            assert_eq!(
                (got_file.as_str(), got_line),
                (*file, *line),
                "{got_reason}"
            );
            assert!(
                got_reason.contains(reason),
                "{got_reason:?} lacks {reason:?}"
            );
        }
        let err = parse(&[("top", "ATTRIBUTE Foo abc string\n")]).unwrap_err();
        assert_eq!(err.to_string(), "top:1: bad attribute number \"abc\"");
    }

    #[test]
    fn load_follows_includes_relative_to_the_including_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("vendors")).unwrap();
        std::fs::write(
            dir.path().join("dictionary"),
            "$INCLUDE vendors/dictionary.acme\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("vendors/dictionary.acme"),
            "VENDOR Acme 99\n$INCLUDE dictionary.acme-attrs\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("vendors/dictionary.acme-attrs"),
            "BEGIN-VENDOR Acme\nATTRIBUTE Acme-Plan 1 string\nEND-VENDOR Acme\n",
        )
        .unwrap();
        let dict = Dictionary::load(&dir.path().join("dictionary")).unwrap();
        assert_eq!(dict.vendor_attribute(99, 1).unwrap().name, "Acme-Plan");
        assert!(dict.attribute(1).is_none());

        let both = Dictionary::load_with_builtin(&dir.path().join("dictionary")).unwrap();
        assert_eq!(both.vendor_attribute(99, 1).unwrap().name, "Acme-Plan");
        assert_eq!(both.attribute(1).unwrap().name, "User-Name");

        std::fs::write(
            dir.path().join("broken"),
            "ATTRIBUTE X 1 string\n$INCLUDE nope\n",
        )
        .unwrap();
        match Dictionary::load(&dir.path().join("broken")).unwrap_err() {
            DictError::Parse { file, line, reason } => {
                assert!(file.ends_with("broken"), "{file}");
                assert_eq!(line, 2);
                assert!(reason.contains("cannot include nope"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            Dictionary::load(&dir.path().join("absent")),
            Err(DictError::Io { .. })
        ));
    }

    #[test]
    fn the_shipped_folder_loads_like_the_embedded_copy() {
        let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../radius-dict/dictionary");
        let loaded = Dictionary::load(&folder).unwrap();
        let builtin = Dictionary::builtin();
        assert_eq!(loaded.attributes, builtin.attributes);
        assert_eq!(loaded.value_names, builtin.value_names);
        assert_eq!(loaded.vendors, builtin.vendors);
    }

    // --- Vendor-Specific splitting ---

    #[test]
    fn splits_a_mikrotik_vsa() {
        // Vendor 14988 (0x00003a8c): Mikrotik-Rate-Limit "10M/20M", Mikrotik-Address-List "blocked".
        let value = [
            0x00, 0x00, 0x3a, 0x8c, //
            0x08, 0x09, b'1', b'0', b'M', b'/', b'2', b'0', b'M', //
            0x13, 0x09, b'b', b'l', b'o', b'c', b'k', b'e', b'd',
        ];
        let (vendor, subs) = split_vendor_specific(Dictionary::builtin(), &value).unwrap();
        assert_eq!(vendor, 14988);
        assert_eq!(
            subs,
            vec![(8, b"10M/20M".to_vec()), (19, b"blocked".to_vec())]
        );
        let def = Dictionary::builtin()
            .vendor_attribute(vendor, subs[0].0)
            .unwrap();
        assert_eq!(render(def.kind, &subs[0].1).as_deref(), Some("10M/20M"));
    }

    #[test]
    fn splits_by_the_vendor_format() {
        let dict = parse(&[(
            "top",
            "VENDOR Wide 99999 format=4,0\nVENDOR Two 5 format=2,2\nVENDOR Cont 6 format=1,1,c\n",
        )])
        .unwrap();
        // format=4,0: a 4-octet type and no length; the value runs to the end.
        let wide = [0x00, 0x01, 0x86, 0x9f, 0x00, 0x01, 0x02, 0x03, b'h', b'i'];
        assert_eq!(
            split_vendor_specific(&dict, &wide).unwrap(),
            (99999, vec![(0x0001_0203, b"hi".to_vec())])
        );
        // format=2,2: the length counts the 4-octet header.
        let two = [
            0, 0, 0, 5, 0x01, 0x02, 0x00, 0x05, 0xaa, 0x00, 0x03, 0x00, 0x04,
        ];
        assert_eq!(
            split_vendor_specific(&dict, &two).unwrap(),
            (5, vec![(0x0102, vec![0xaa]), (3, vec![])])
        );
        // format=1,1,c: a continuation octet follows the length.
        let cont = [0, 0, 0, 6, 0x01, 0x05, 0x00, b'o', b'k'];
        assert_eq!(
            split_vendor_specific(&dict, &cont).unwrap(),
            (6, vec![(1, b"ok".to_vec())])
        );
        // An unknown vendor uses 1,1; a vendor id alone has no sub-attributes.
        assert_eq!(
            split_vendor_specific(&dict, &[0, 0, 0, 7, 0x02, 0x03, 0x61]).unwrap(),
            (7, vec![(2, b"a".to_vec())])
        );
        assert_eq!(
            split_vendor_specific(&dict, &[0, 0, 0, 7]).unwrap(),
            (7, vec![])
        );
    }

    #[test]
    fn malformed_vsas_are_errors() {
        let dict = Dictionary::builtin();
        let cases: &[&[u8]] = &[
            &[],
            &[0x00, 0x00, 0x3a],
            // Header cut after the type octet.
            &[0x00, 0x00, 0x3a, 0x8c, 0x08],
            // Length past the end.
            &[0x00, 0x00, 0x3a, 0x8c, 0x08, 0x09, b'1', b'0'],
            // Length shorter than the header.
            &[0x00, 0x00, 0x3a, 0x8c, 0x08, 0x01, b'x'],
            // A good sub-attribute followed by a truncated one.
            &[0x00, 0x00, 0x3a, 0x8c, 0x08, 0x03, b'x', 0x13, 0x05, b'a'],
        ];
        for value in cases {
            assert!(
                matches!(
                    split_vendor_specific(dict, value),
                    Err(DictError::MalformedVsa(_))
                ),
                "{value:02x?}"
            );
        }
    }

    // --- rendering ---

    #[test]
    fn renders_scalar_types() {
        let cases: &[(AttrKind, &[u8], Option<&str>)] = &[
            (AttrKind::String, b"alice@isp", Some("alice@isp")),
            (AttrKind::String, b"", Some("")),
            (AttrKind::String, &[b'a', 0xff], Some("a\u{fffd}")),
            (AttrKind::Octets, &[0xde, 0xad, 0x01], Some("0xdead01")),
            (AttrKind::Other, &[0x0a], Some("0x0a")),
            (AttrKind::Integer, &[0x00, 0x00, 0x01, 0x00], Some("256")),
            (
                AttrKind::Integer,
                &[0xff, 0xff, 0xff, 0xff],
                Some("4294967295"),
            ),
            (AttrKind::Integer, &[0x01, 0x00], None),
            (
                AttrKind::Integer64,
                &[0, 0, 0, 1, 0, 0, 0, 0],
                Some("4294967296"),
            ),
            (AttrKind::Integer64, &[0, 0, 0, 1], None),
            (AttrKind::Short, &[0x01, 0x00], Some("256")),
            (AttrKind::Short, &[0x01], None),
            (AttrKind::Byte, &[0x07], Some("7")),
            (AttrKind::Byte, &[], None),
            (AttrKind::Signed, &[0xff, 0xff, 0xff, 0xfe], Some("-2")),
            (
                AttrKind::Date,
                &[0x65, 0x92, 0x00, 0x80],
                Some("2024-01-01T00:00:00Z"),
            ),
            (
                AttrKind::Date,
                &[0x00, 0x00, 0x00, 0x00],
                Some("1970-01-01T00:00:00Z"),
            ),
            (AttrKind::Date, &[0x65, 0x92, 0x00], None),
            (AttrKind::IpAddr, &[192, 0, 2, 1], Some("192.0.2.1")),
            (AttrKind::IpAddr, &[192, 0, 2], None),
            (
                AttrKind::IfId,
                &[0x02, 0x11, 0x22, 0xff, 0xfe, 0x33, 0x44, 0x55],
                Some("0211:22ff:fe33:4455"),
            ),
            (AttrKind::IfId, &[0x02, 0x11], None),
            (
                AttrKind::Ether,
                &[0x00, 0x11, 0x22, 0xaa, 0xbb, 0xcc],
                Some("00:11:22:aa:bb:cc"),
            ),
            (AttrKind::Ether, &[0x00, 0x11, 0x22, 0xaa, 0xbb], None),
        ];
        for (kind, raw, expected) in cases {
            assert_eq!(
                render(*kind, raw).as_deref(),
                *expected,
                "{kind:?} {raw:02x?}"
            );
        }
    }

    #[test]
    fn renders_addresses_and_prefixes() {
        let v6 = [
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
        ];
        let cases: &[(AttrKind, &[u8], Option<&str>)] = &[
            (AttrKind::Ipv6Addr, &v6, Some("2001:db8::1")),
            (AttrKind::Ipv6Addr, &v6[..15], None),
            // RFC 3162: reserved, length, prefix octets (as many as the length needs, up to 16).
            (
                AttrKind::Ipv6Prefix,
                &[0, 48, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x10],
                Some("2001:db8:10::/48"),
            ),
            (
                AttrKind::Ipv6Prefix,
                &[0, 56, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x10, 0xab],
                Some("2001:db8:10:ab00::/56"),
            ),
            (
                AttrKind::Ipv6Prefix,
                &[
                    0, 64, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0,
                ],
                Some("2001:db8:1:2::/64"),
            ),
            (AttrKind::Ipv6Prefix, &[0, 0], Some("::/0")),
            (
                AttrKind::Ipv6Prefix,
                &[
                    0, 128, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
                ],
                Some("2001:db8::1/128"),
            ),
            // Prefix length above 128.
            (
                AttrKind::Ipv6Prefix,
                &[
                    0, 129, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
                ],
                None,
            ),
            // Fewer prefix octets than the length needs.
            (AttrKind::Ipv6Prefix, &[0, 64, 0x20, 0x01, 0x0d, 0xb8], None),
            (AttrKind::Ipv6Prefix, &[0, 128, 0x20, 0x01], None),
            // More than 16 prefix octets, or no length octet.
            (
                AttrKind::Ipv6Prefix,
                &[0, 64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                None,
            ),
            (AttrKind::Ipv6Prefix, &[0], None),
            (
                AttrKind::Ipv4Prefix,
                &[0, 24, 192, 0, 2, 0],
                Some("192.0.2.0/24"),
            ),
            (AttrKind::Ipv4Prefix, &[0, 33, 192, 0, 2, 0], None),
            (AttrKind::Ipv4Prefix, &[0, 24, 192, 0, 2], None),
        ];
        for (kind, raw, expected) in cases {
            assert_eq!(
                render(*kind, raw).as_deref(),
                *expected,
                "{kind:?} {raw:02x?}"
            );
        }
    }
}

#[cfg(test)]
mod encode_tests {
    use super::*;

    #[test]
    fn encodes_standard_vendor_and_typed_values_as_render_reads_them() {
        let d = Dictionary::builtin();
        assert_eq!(
            d.encode_attribute("Filter-Id", "gold").unwrap(),
            [11, 6, b'g', b'o', b'l', b'd']
        );
        assert_eq!(
            d.encode_attribute("session-timeout", "3600").unwrap(),
            [27, 6, 0, 0, 0x0e, 0x10]
        );
        // A VALUE name instead of the number.
        assert_eq!(
            d.encode_attribute("Acct-Status-Type", "Interim-Update")
                .unwrap(),
            [40, 6, 0, 0, 0, 3]
        );
        // MikroTik (14988) attribute 8 inside Vendor-Specific.
        let mut want = vec![26, 15, 0, 0, 0x3a, 0x8c, 8, 9];
        want.extend_from_slice(b"10M/20M");
        assert_eq!(
            d.encode_attribute("Mikrotik-Rate-Limit", "10M/20M")
                .unwrap(),
            want
        );
        // RFC 3162 prefix: only the octets the length needs.
        assert_eq!(
            d.encode_attribute("Framed-IPv6-Prefix", "2001:db8:1::/48")
                .unwrap(),
            [97, 10, 0, 48, 0x20, 0x01, 0x0d, 0xb8, 0, 1]
        );
        for (kind, text) in [
            (AttrKind::IpAddr, "10.1.2.3"),
            (AttrKind::Ipv6Prefix, "2001:db8::/32"),
            (AttrKind::Ether, "00:11:22:aa:bb:cc"),
            (AttrKind::IfId, "0000:0000:0000:0001"),
            (AttrKind::Octets, "0x00ff10"),
            (AttrKind::Date, "2026-11-26T00:00:00Z"),
        ] {
            let raw = parse_value(kind, text, |_| None).unwrap();
            assert_eq!(render(kind, &raw).unwrap(), text, "{kind:?}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_encode() {
        let d = Dictionary::builtin();
        assert_eq!(
            d.encode_attribute("No-Such-Attribute", "1"),
            Err(EncodeError::UnknownAttribute("No-Such-Attribute".into()))
        );
        assert!(matches!(
            d.encode_attribute("Session-Timeout", "-1"),
            Err(EncodeError::BadValue { .. })
        ));
        assert!(matches!(
            d.encode_attribute("Framed-IP-Address", "10.1.2"),
            Err(EncodeError::BadValue { .. })
        ));
        assert!(matches!(
            d.encode_attribute("User-Password", "secret"),
            Err(EncodeError::Unsupported(_))
        ));
        assert!(matches!(
            d.encode_attribute("Filter-Id", &"x".repeat(300)),
            Err(EncodeError::TooLong(_))
        ));
        assert_eq!(parse_value(AttrKind::Octets, "0x0", |_| None), None);
        assert_eq!(parse_value(AttrKind::Byte, "256", |_| None), None);
    }
}
