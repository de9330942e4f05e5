//! Setup shared by the NTS fuzz targets: a fixed fleet key set, a deterministic
//! random source and a server's system state. Each target uses a part of it.
#![allow(dead_code)]

use std::sync::OnceLock;

use ntp_proto::{LeapIndicator, NtpShort, NtpTimestamp, ReferenceId, SystemInfo};
use nts_cookie::rand_core::{CryptoRng, RngCore};
use nts_cookie::{KeySet, KeySetConfig};

const SECRET: [u8; 32] = *b"fuzzing fleet secret, 32 bytes!!";
const NOW: u64 = 1_700_000_000;

/// The fleet key set every run uses (built once).
pub fn key_set() -> &'static KeySet {
    static SET: OnceLock<KeySet> = OnceLock::new();
    SET.get_or_init(|| {
        let config = KeySetConfig {
            rotation_period_s: 3600,
            old_keys_kept: 2,
        };
        KeySet::fleet(config, &SECRET, NOW).expect("valid fixed config and secret")
    })
}

/// SplitMix64: deterministic, so a crash reproduces. Marked `CryptoRng` only because
/// the API asks for one; nothing here needs secrecy.
pub struct FuzzRng(pub u64);

impl RngCore for FuzzRng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.next_u64().to_be_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

impl CryptoRng for FuzzRng {}

/// A synchronised stratum-1 server's state.
pub fn system() -> SystemInfo {
    SystemInfo {
        leap: LeapIndicator::NoWarning,
        stratum: 1,
        precision: -20,
        root_delay: NtpShort::ZERO,
        root_dispersion: NtpShort::ZERO,
        reference_id: ReferenceId::from_ascii("FUZZ").expect("valid name"),
        reference_timestamp: NtpTimestamp::from_bits(0xe93c_7f00_0000_0000),
    }
}
