//! NTS key export (RFC 8915 §5.1; RFC 8446 §7.5).
//!
//! Both ends derive the NTP keys from the TLS 1.3 exporter with the label
//! `EXPORTER-network-time-security` and a 5-byte context
//! `protocol u16 ‖ AEAD u16 ‖ 0x00 (C2S) / 0x01 (S2C)`; the output length is the AEAD key
//! length. [`export_params`] computes these; [`export_keys`] runs them through any
//! [`KeyingMaterialExporter`] (rustls connections implement it with the `tls` feature).

use core::fmt;

use zeroize::Zeroizing;

use crate::record::{AeadId, ProtocolId};

/// The exporter label (30 ASCII bytes). Never change it or extend the context.
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-network-time-security";

/// Which key to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client to server (context byte 0x00): protects requests.
    ClientToServer,
    /// Server to client (context byte 0x01): protects responses.
    ServerToClient,
}

impl Direction {
    /// The last byte of the exporter context.
    pub fn context_byte(self) -> u8 {
        match self {
            Self::ClientToServer => 0x00,
            Self::ServerToClient => 0x01,
        }
    }
}

/// Everything one exporter call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportParams {
    /// [`EXPORTER_LABEL`].
    pub label: &'static [u8],
    /// `protocol ‖ aead ‖ direction`.
    pub context: [u8; 5],
    /// Output length: the AEAD key length.
    pub len: usize,
}

/// Why keys could not be exported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The AEAD algorithm has no key length known to this crate.
    #[error("unsupported aead algorithm {0}")]
    UnsupportedAead(AeadId),
    /// The TLS exporter failed (e.g. the handshake has not completed).
    #[error("tls exporter failed: {0}")]
    Exporter(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// The exporter context: `protocol u16 ‖ aead u16 ‖ direction`.
///
/// ```
/// use nts_ke::export::{Direction, exporter_context};
/// use nts_ke::record::{AeadId, ProtocolId};
///
/// assert_eq!(
///     exporter_context(ProtocolId::NTPV4, AeadId::AES_SIV_CMAC_256, Direction::ServerToClient),
///     [0x00, 0x00, 0x00, 0x0f, 0x01]
/// );
/// ```
pub fn exporter_context(protocol: ProtocolId, aead: AeadId, direction: Direction) -> [u8; 5] {
    let [p0, p1] = protocol.0.to_be_bytes();
    let [a0, a1] = aead.0.to_be_bytes();
    [p0, p1, a0, a1, direction.context_byte()]
}

/// Label, context and length for one direction's key.
///
/// # Errors
///
/// [`ExportError::UnsupportedAead`] if `aead` has no known key length.
pub fn export_params(
    protocol: ProtocolId,
    aead: AeadId,
    direction: Direction,
) -> Result<ExportParams, ExportError> {
    let len = aead.key_len().ok_or(ExportError::UnsupportedAead(aead))?;
    Ok(ExportParams {
        label: EXPORTER_LABEL,
        context: exporter_context(protocol, aead, direction),
        len,
    })
}

/// The two NTS keys of one session. `Debug` does not print them.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKeys {
    /// Client-to-server key.
    pub c2s: Zeroizing<Vec<u8>>,
    /// Server-to-client key.
    pub s2c: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionKeys")
            .field("c2s", &format_args!("<{} bytes>", self.c2s.len()))
            .field("s2c", &format_args!("<{} bytes>", self.s2c.len()))
            .finish()
    }
}

/// Something that runs the TLS 1.3 exporter (RFC 8446 §7.5) of a finished handshake.
pub trait KeyingMaterialExporter {
    /// Fills `out` with exported keying material for `label` and `context`.
    ///
    /// # Errors
    ///
    /// [`ExportError::Exporter`] if the TLS layer fails.
    fn export_into(&self, out: &mut [u8], label: &[u8], context: &[u8]) -> Result<(), ExportError>;
}

/// Exports the C2S and S2C keys for `protocol` and `aead`.
///
/// # Errors
///
/// [`ExportError::UnsupportedAead`] for an AEAD with no known key length, or the exporter's
/// error.
pub fn export_keys<E: KeyingMaterialExporter + ?Sized>(
    exporter: &E,
    protocol: ProtocolId,
    aead: AeadId,
) -> Result<SessionKeys, ExportError> {
    let one = |direction| -> Result<Zeroizing<Vec<u8>>, ExportError> {
        let params = export_params(protocol, aead, direction)?;
        let mut key = Zeroizing::new(vec![0u8; params.len]);
        exporter.export_into(&mut key, params.label, &params.context)?;
        Ok(key)
    };
    Ok(SessionKeys {
        c2s: one(Direction::ClientToServer)?,
        s2c: one(Direction::ServerToClient)?,
    })
}

#[cfg(feature = "tls")]
mod rustls_impls {
    use super::{ExportError, KeyingMaterialExporter};

    fn export(result: Result<&mut [u8], rustls::Error>) -> Result<(), ExportError> {
        result
            .map(|_| ())
            .map_err(|e| ExportError::Exporter(Box::new(e)))
    }

    impl<D> KeyingMaterialExporter for rustls::ConnectionCommon<D> {
        fn export_into(
            &self,
            out: &mut [u8],
            label: &[u8],
            context: &[u8],
        ) -> Result<(), ExportError> {
            export(self.export_keying_material(out, label, Some(context)))
        }
    }

    impl KeyingMaterialExporter for rustls::ClientConnection {
        fn export_into(
            &self,
            out: &mut [u8],
            label: &[u8],
            context: &[u8],
        ) -> Result<(), ExportError> {
            export(self.export_keying_material(out, label, Some(context)))
        }
    }

    impl KeyingMaterialExporter for rustls::ServerConnection {
        fn export_into(
            &self,
            out: &mut [u8],
            label: &[u8],
            context: &[u8],
        ) -> Result<(), ExportError> {
            export(self.export_keying_material(out, label, Some(context)))
        }
    }

    impl KeyingMaterialExporter for rustls::Connection {
        fn export_into(
            &self,
            out: &mut [u8],
            label: &[u8],
            context: &[u8],
        ) -> Result<(), ExportError> {
            export(self.export_keying_material(out, label, Some(context)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// One exporter call: label, context, output length.
    type Call = (Vec<u8>, Vec<u8>, usize);

    /// Records calls and fills the output with a pattern from the context.
    struct Fake(RefCell<Vec<Call>>);

    impl KeyingMaterialExporter for Fake {
        fn export_into(
            &self,
            out: &mut [u8],
            label: &[u8],
            context: &[u8],
        ) -> Result<(), ExportError> {
            self.0
                .borrow_mut()
                .push((label.to_vec(), context.to_vec(), out.len()));
            out.fill(context.last().copied().unwrap_or(0xff));
            Ok(())
        }
    }

    #[test]
    fn contexts_and_lengths() {
        assert_eq!(EXPORTER_LABEL.len(), 30);
        let cases = [(15, 32), (16, 48), (17, 64), (30, 16), (31, 32)];
        for (aead, len) in cases {
            let c2s = export_params(ProtocolId::NTPV4, AeadId(aead), Direction::ClientToServer)
                .expect("known aead");
            assert_eq!(c2s.len, len);
            assert_eq!(c2s.label, b"EXPORTER-network-time-security");
            let [a0, a1] = aead.to_be_bytes();
            assert_eq!(c2s.context, [0, 0, a0, a1, 0]);
        }
        assert_eq!(
            exporter_context(ProtocolId::NTPV4, AeadId(15), Direction::ClientToServer),
            hex_literal::hex!("0000000F00")
        );
        assert_eq!(
            exporter_context(ProtocolId(0x8001), AeadId(17), Direction::ServerToClient),
            hex_literal::hex!("8001001101")
        );
        assert!(matches!(
            export_params(ProtocolId::NTPV4, AeadId(99), Direction::ClientToServer),
            Err(ExportError::UnsupportedAead(AeadId(99)))
        ));
    }

    #[test]
    fn export_keys_calls_exporter_twice() {
        let fake = Fake(RefCell::new(Vec::new()));
        let keys =
            export_keys(&fake, ProtocolId::NTPV4, AeadId::AES_SIV_CMAC_512).expect("fake exporter");
        assert_eq!(*keys.c2s, vec![0u8; 64]);
        assert_eq!(*keys.s2c, vec![1u8; 64]);
        let calls = fake.0.into_inner();
        assert_eq!(
            calls,
            vec![
                (EXPORTER_LABEL.to_vec(), vec![0, 0, 0, 17, 0], 64),
                (EXPORTER_LABEL.to_vec(), vec![0, 0, 0, 17, 1], 64),
            ]
        );
        let debug = format!("{keys:?}");
        assert!(!debug.contains("[1, 1"), "{debug}");
    }
}
