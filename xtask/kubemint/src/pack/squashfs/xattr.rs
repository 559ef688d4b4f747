//! squashfs extended attributes (squashfs 4.0, as the kernel's `fs/squashfs/xattr.h` reads
//! them): each distinct list of (name, value) is written once into the xattr metadata table,
//! every entry a 16-bit prefix type, the name's length and bytes without the prefix, then the
//! value's 32-bit length and bytes (inline: no out-of-line values, no sharing of equal values
//! between lists); an inode carries the 32-bit index of its list in the xattr id table, whose
//! 16-byte entries give (where the list starts, how many entries, their listxattr size). The
//! id table is metadata too; after it come the header the superblock points at (where the
//! xattr table starts, how many ids) and the positions of the id table's blocks. These are
//! the image's last tables, as the kernel requires: they must end exactly at `bytes_used`.
//!
//! Lists are numbered in the order inodes are written, so the bytes depend on the tree alone.

use super::SquashfsError;
use super::inode::{INVALID_U32, Le};
use super::meta::Meta;
use std::collections::BTreeMap;

/// The namespaces squashfs encodes, with their type numbers.
const PREFIXES: [(&str, u16); 3] = [("user.", 0), ("trusted.", 1), ("security.", 2)];

/// The extended attribute lists of an image being written.
#[derive(Default)]
pub struct Xattrs<'t> {
    kv: Meta,
    /// Each list's (position in `kv`, count, size), by index.
    ids: Vec<(u64, u32, u32)>,
    seen: BTreeMap<&'t BTreeMap<String, Vec<u8>>, u32>,
}

impl<'t> Xattrs<'t> {
    /// The index to store in an inode with these attributes: [`INVALID_U32`] for none, the
    /// same index for equal lists. `path` names the entry in errors.
    pub fn index(
        &mut self,
        path: &str,
        list: &'t BTreeMap<String, Vec<u8>>,
    ) -> Result<u32, SquashfsError> {
        if list.is_empty() {
            return Ok(INVALID_U32);
        }
        if let Some(&i) = self.seen.get(list) {
            return Ok(i);
        }
        let at = self.kv.pos();
        let mut size = 0u64;
        for (name, value) in list {
            let unsupported = || SquashfsError::Xattr {
                path: path.to_owned(),
                name: name.clone(),
            };
            let (rest, kind) = PREFIXES
                .iter()
                .find_map(|(p, k)| name.strip_prefix(p).map(|rest| (rest, *k)))
                .filter(|(rest, _)| !rest.is_empty())
                .ok_or_else(unsupported)?;
            let name_len = u16::try_from(rest.len()).map_err(|_| unsupported())?;
            let value_len = u32::try_from(value.len()).map_err(|_| unsupported())?;
            let mut le = Le::default();
            le.u16(kind)
                .u16(name_len)
                .bytes(rest.as_bytes())
                .u32(value_len)
                .bytes(value);
            self.kv.write(&le.0);
            // As mksquashfs counts it: each full name with its NUL, and each value.
            size += name.len() as u64 + 1 + value.len() as u64;
        }
        let size = u32::try_from(size).map_err(|_| SquashfsError::TooBig {
            what: "extended attribute list",
        })?;
        let index = u32::try_from(self.ids.len())
            .ok()
            .filter(|i| *i != INVALID_U32)
            .ok_or(SquashfsError::TooBig {
                what: "extended attribute id table",
            })?;
        self.ids.push((at.inode_ref(), list.len() as u32, size));
        self.seen.insert(list, index);
        Ok(index)
    }

    /// The tables' bytes, to be written at image offset `start` (after the id table), and the
    /// offset of the header the superblock points at; `None` when no inode has attributes.
    pub fn finish(self, start: u64) -> Option<(Vec<u8>, u64)> {
        if self.ids.is_empty() {
            return None;
        }
        let (kv, _) = self.kv.finish();
        let mut id_meta = Meta::new();
        for (at, count, size) in &self.ids {
            let mut le = Le::default();
            le.u64(*at).u32(*count).u32(*size);
            id_meta.write(&le.0);
        }
        let (id_blocks, starts) = id_meta.finish();
        let id_blocks_start = start + kv.len() as u64;
        let mut out = kv;
        out.extend_from_slice(&id_blocks);
        let header_at = start + out.len() as u64;
        let mut le = Le::default();
        le.u64(start).u32(self.ids.len() as u32).u32(0);
        for s in starts {
            le.u64(id_blocks_start + s);
        }
        out.extend_from_slice(&le.0);
        Some((out, header_at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_written_once_in_order_with_ids_and_header_last() {
        let a: BTreeMap<String, Vec<u8>> =
            BTreeMap::from([("user.extension-release.strict".into(), b"0".to_vec())]);
        let b: BTreeMap<String, Vec<u8>> = BTreeMap::from([
            ("security.x".into(), b"vv".to_vec()),
            ("user.y".into(), Vec::new()),
        ]);
        let none = BTreeMap::new();
        let a2 = a.clone();
        let mut x = Xattrs::default();
        assert_eq!(x.index("/n", &none).unwrap(), INVALID_U32);
        assert_eq!(x.index("/a", &a).unwrap(), 0);
        assert_eq!(x.index("/b", &b).unwrap(), 1);
        assert_eq!(x.index("/a2", &a2).unwrap(), 0);
        let (bytes, header_at) = x.finish(1000).unwrap();
        let kv = crate::pack::squashfs::meta::tests::unpack(&bytes[..(header_at - 1000) as usize]);
        let mut want = Le::default();
        want.u16(0)
            .u16(24)
            .bytes(b"extension-release.strict")
            .u32(1)
            .bytes(b"0");
        let second = want.0.len() as u64;
        want.u16(2).u16(1).bytes(b"x").u32(2).bytes(b"vv");
        want.u16(0).u16(1).bytes(b"y").u32(0);
        // Both small tables are one stored-or-compressed block each; the first unpacks to
        // the lists, then the ids follow.
        assert_eq!(&kv[..want.0.len()], &want.0[..]);
        let ids = &kv[want.0.len()..];
        let mut want_ids = Le::default();
        want_ids
            .u64(0)
            .u32(1)
            .u32(29 + 1 + 1)
            .u64(second)
            .u32(2)
            .u32(10 + 1 + 2 + 6 + 1);
        assert_eq!(ids, &want_ids.0[..]);
        let h = &bytes[(header_at - 1000) as usize..];
        assert_eq!(h.len(), 16 + 8);
        assert_eq!(u64::from_le_bytes(h[..8].try_into().unwrap()), 1000);
        assert_eq!(u32::from_le_bytes(h[8..12].try_into().unwrap()), 2);
        let id_block = u64::from_le_bytes(h[16..24].try_into().unwrap());
        assert!(id_block > 1000 && id_block < header_at);
        assert!(Xattrs::default().finish(0).is_none());
        let bad = BTreeMap::from([("system.posix_acl_access".to_owned(), Vec::new())]);
        assert!(matches!(
            Xattrs::default().index("/p", &bad),
            Err(SquashfsError::Xattr { .. })
        ));
    }
}
