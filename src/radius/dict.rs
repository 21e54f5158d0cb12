//! FreeRADIUS-format dictionaries (`radius-dict/`): attribute, vendor and value names, used
//! to name Vendor-Specific attributes and to render values. Unknown attributes stay raw.

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

/// One attribute definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeDef {
    pub name: String,
    pub code: u32,
    pub kind: AttrKind,
    /// `None` for standard attributes, the vendor id for vendor ones.
    pub vendor_id: Option<u32>,
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
}
