//! `ntp-server` configuration parsing on arbitrary text.
//!
//! Oracle: no panic; an error names a line inside the text; every warning
//! does too; a configuration that parses re-parses identically (parsing is a
//! pure function of the text).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines = text.lines().count().max(1) + 1;
    match ntp_server::config::parse(text) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                if let Some(p) = w.position {
                    assert!(
                        p.line >= 1 && p.line <= lines,
                        "warning line {} of {lines}",
                        p.line
                    );
                }
            }
            let again = ntp_server::config::parse(text).expect("parsed once, parses again");
            assert_eq!(again, loaded);
        }
        Err(e) => {
            if let Some(line) = e.line() {
                assert!(
                    line >= 1 && line <= lines,
                    "error line {line} of {lines}: {e}"
                );
            }
        }
    }
});
