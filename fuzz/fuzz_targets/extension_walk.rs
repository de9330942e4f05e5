//! The extension-field walks over arbitrary bytes: the trailer walk (packet
//! rules, v4 and v3) and the inner walk (RFC 8915 ciphertext rules).
//!
//! Oracle: no panic; every yielded field lies inside the input, in order and
//! without overlap; an error is the last item; offsets in errors are in range.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ntp_proto::{InnerFieldWalker, TrailerItem, TrailerWalker, Version};

fuzz_target!(|data: &[u8]| {
    for version in [Version::V4, Version::V3] {
        let mut next_offset = 0;
        let mut walker = TrailerWalker::new(data, 0, version);
        let mut ended = false;
        for item in walker.by_ref() {
            assert!(!ended, "nothing may follow an error or a MAC");
            match item {
                Ok(TrailerItem::ExtensionField(f)) => {
                    assert_eq!(f.offset, next_offset);
                    assert!(f.length() >= 16 && f.length() % 4 == 0);
                    assert_eq!(&data[f.offset + 4..f.offset + f.length()], f.body);
                    next_offset += f.length();
                }
                Ok(TrailerItem::Mac(m)) => {
                    assert_eq!(data.len() - next_offset, m.encoded_len());
                    ended = true;
                }
                Err(e) => {
                    assert!(e.offset() <= data.len());
                    ended = true;
                }
            }
        }
    }
    let mut next_offset = 0;
    for item in InnerFieldWalker::new(data) {
        match item {
            Ok(f) => {
                assert_eq!(f.offset, next_offset);
                assert_eq!(&data[f.offset + 4..f.offset + f.length()], f.body);
                let _ = f.nts();
                next_offset += f.length();
            }
            Err(e) => assert!(e.offset() <= data.len()),
        }
    }
});
