//! What a line's commit states about its members, in its MLS authenticated data, and how anyone
//! reads that data from the commit without the group's keys (`docs/WIRE.md`, "Removals" and
//! "Additions").
//!
//! The authenticated data of an MLS message travels in clear and the envelope's signature covers
//! it, so a verifier of a bundle reads what the home member stated of who left and who joined, and
//! explains with it the envelopes a member's record cannot hold.

use crate::envelope::check_member_code;
use crate::EnvelopeHash;

/// What opens the removals a commit carries.
pub const REMOVALS_LABEL: &[u8] = b"ADI-REMOVALS-1";
/// What opens the additions a commit carries.
pub const ADDITIONS_LABEL: &[u8] = b"ADI-ADDITIONS-1";

/// MLS content types (RFC 9420, section 6).
pub const MLS_APPLICATION: u8 = 1;
pub const MLS_PROPOSAL: u8 = 2;
pub const MLS_COMMIT: u8 = 3;

/// Where a member taken off a line stopped: its last envelope on the line the home member held
/// when it committed (sequence number 0 and a zero hash if none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    pub member: String,
    pub seq: u64,
    pub hash: EnvelopeHash,
}

/// What a commit states about the line's members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Membership {
    /// Nothing: a key update.
    Unchanged,
    /// The members it takes off, each with where it stopped.
    Removals(Vec<Place>),
    /// The members it adds: the home member's next envelopes, one per member in this order, are
    /// their line set-ups, each sent to that member alone.
    Additions(Vec<String>),
}

impl Membership {
    /// The authenticated data: empty for [`Membership::Unchanged`]; else the label, a count (one
    /// byte), and per member its code (a length byte and the code), followed for a removal by the
    /// sequence number (8 bytes) and hash (32 bytes) of its place.
    pub fn encode(&self) -> Vec<u8> {
        let code = |out: &mut Vec<u8>, c: &str| {
            out.push(c.len() as u8);
            out.extend_from_slice(c.as_bytes());
        };
        match self {
            Membership::Unchanged => Vec::new(),
            Membership::Removals(places) => {
                let mut out = REMOVALS_LABEL.to_vec();
                out.push(places.len() as u8);
                for p in places {
                    code(&mut out, &p.member);
                    out.extend_from_slice(&p.seq.to_be_bytes());
                    out.extend_from_slice(&p.hash.0);
                }
                out
            }
            Membership::Additions(members) => {
                let mut out = ADDITIONS_LABEL.to_vec();
                out.push(members.len() as u8);
                for m in members {
                    code(&mut out, m);
                }
                out
            }
        }
    }

    /// Reads [`Membership::encode`]; anything else is refused with the reason.
    pub fn decode(mut aad: &[u8]) -> Result<Membership, String> {
        fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
            if bytes.len() < n {
                return Err("the commit's membership statement ends early".into());
            }
            let (head, tail) = bytes.split_at(n);
            *bytes = tail;
            Ok(head)
        }
        fn code(bytes: &mut &[u8]) -> Result<String, String> {
            let len = take(bytes, 1)?[0] as usize;
            let code = std::str::from_utf8(take(bytes, len)?).map_err(|_| "a member code is not text".to_string())?;
            check_member_code(code).map_err(|e| format!("member code '{code}': {e}"))?;
            Ok(code.to_string())
        }
        if aad.is_empty() {
            return Ok(Membership::Unchanged);
        }
        let out = if aad.starts_with(REMOVALS_LABEL) {
            take(&mut aad, REMOVALS_LABEL.len())?;
            let count = take(&mut aad, 1)?[0];
            let mut places = Vec::with_capacity(count as usize);
            for _ in 0..count {
                let member = code(&mut aad)?;
                let seq = u64::from_be_bytes(take(&mut aad, 8)?.try_into().map_err(|_| "a short sequence number")?);
                let hash = EnvelopeHash(take(&mut aad, 32)?.try_into().map_err(|_| "a short hash")?);
                places.push(Place { member, seq, hash });
            }
            Membership::Removals(places)
        } else if aad.starts_with(ADDITIONS_LABEL) {
            take(&mut aad, ADDITIONS_LABEL.len())?;
            let count = take(&mut aad, 1)?[0];
            let members = (0..count).map(|_| code(&mut aad)).collect::<Result<Vec<_>, _>>()?;
            Membership::Additions(members)
        } else {
            return Err("the commit's authenticated data is not an ADI membership statement".into());
        };
        if !aad.is_empty() {
            return Err("trailing bytes after the membership statement".into());
        }
        Ok(out)
    }
}

/// The content type and the authenticated data of an MLS message (RFC 9420, `MLSMessage` of
/// version `mls10` holding a `PublicMessage` or a `PrivateMessage`), read without keys.
pub fn mls_framing(bytes: &[u8]) -> Result<(u8, &[u8]), String> {
    struct Reader<'a>(&'a [u8]);
    impl<'a> Reader<'a> {
        fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
            if self.0.len() < n {
                return Err("the MLS message ends early".into());
            }
            let (head, tail) = self.0.split_at(n);
            self.0 = tail;
            Ok(head)
        }
        fn u8(&mut self) -> Result<u8, String> {
            Ok(self.take(1)?[0])
        }
        fn u16(&mut self) -> Result<u16, String> {
            let b = self.take(2)?;
            Ok(u16::from_be_bytes([b[0], b[1]]))
        }
        /// A variable-length vector (RFC 9420, section 2.1.2): a 1, 2 or 4 byte length whose top
        /// two bits give its size.
        fn vector(&mut self) -> Result<&'a [u8], String> {
            let first = self.u8()?;
            let len = match first >> 6 {
                0 => (first & 0x3f) as usize,
                1 => ((first as usize & 0x3f) << 8) | self.u8()? as usize,
                2 => {
                    let rest = self.take(3)?;
                    ((first as usize & 0x3f) << 24)
                        | (rest[0] as usize) << 16
                        | (rest[1] as usize) << 8
                        | rest[2] as usize
                }
                _ => return Err("an MLS vector length with both top bits set".into()),
            };
            self.take(len)
        }
    }
    let mut r = Reader(bytes);
    if r.u16()? != 1 {
        return Err("not an MLS 1.0 message".into());
    }
    match r.u16()? {
        // PublicMessage: group id, epoch, sender, authenticated data, content type.
        1 => {
            r.vector()?;
            r.take(8)?;
            match r.u8()? {
                1 | 2 => {
                    r.take(4)?;
                }
                3 | 4 => {}
                _ => return Err("an unknown MLS sender type".into()),
            }
            let aad = r.vector()?;
            Ok((r.u8()?, aad))
        }
        // PrivateMessage: group id, epoch, content type, authenticated data.
        2 => {
            r.vector()?;
            r.take(8)?;
            let content_type = r.u8()?;
            Ok((content_type, r.vector()?))
        }
        _ => Err("not an MLS public or private message".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_statements_read_back_and_bad_ones_are_refused() {
        let removals = Membership::Removals(vec![Place { member: "VN".into(), seq: 7, hash: EnvelopeHash([3; 32]) }]);
        let additions = Membership::Additions(vec!["TL".into(), "MY".into()]);
        for m in [Membership::Unchanged, removals.clone(), additions.clone()] {
            assert_eq!(Membership::decode(&m.encode()), Ok(m));
        }
        let bytes = additions.encode();
        assert!(Membership::decode(&bytes[..bytes.len() - 1]).is_err(), "cut short");
        let mut trailing = removals.encode();
        trailing.push(0);
        assert!(Membership::decode(&trailing).unwrap_err().contains("trailing"));
        assert!(Membership::decode(b"ADI-OTHER-1\x00").is_err());
        let mut lower = ADDITIONS_LABEL.to_vec();
        lower.extend_from_slice(&[1, 2, b't', b'l']);
        assert!(Membership::decode(&lower).unwrap_err().contains("member code"));
    }

    #[test]
    fn the_framing_of_mls_messages_is_read_without_keys() {
        // A PrivateMessage: version 1, wire format 2, group id <4>, epoch, content type 3 (a
        // commit), authenticated data <3>, then what only members can read.
        let mut private = vec![0, 1, 0, 2, 4, 9, 9, 9, 9];
        private.extend_from_slice(&5u64.to_be_bytes());
        private.extend_from_slice(&[MLS_COMMIT, 3, b'a', b'a', b'd', 0x40, 0x02, 1, 2]);
        assert_eq!(mls_framing(&private), Ok((MLS_COMMIT, &b"aad"[..])));
        // A PublicMessage from a member: group id, epoch, sender (type 1, leaf 2), a two-byte
        // length prefix for 70 bytes of authenticated data, content type 2 (a proposal).
        let mut public = vec![0, 1, 0, 1, 1, 7];
        public.extend_from_slice(&1u64.to_be_bytes());
        public.extend_from_slice(&[1, 0, 0, 0, 2, 0x40, 70]);
        public.extend_from_slice(&[b'x'; 70]);
        public.push(MLS_PROPOSAL);
        assert_eq!(mls_framing(&public), Ok((MLS_PROPOSAL, &[b'x'; 70][..])));
        for bad in [&private[..12], &[0, 2, 0, 2][..], &[0, 1, 0, 3][..], &[0, 1, 0, 2, 0xc0][..]] {
            assert!(mls_framing(bad).is_err(), "{bad:?}");
        }
    }
}
